"""The one memory policy: every decision from readings and predictions, with its numbers."""

import pytest

from shadowhound_llm_bench.core.memory.footprint import FootprintPrediction
from shadowhound_llm_bench.core.memory.memory_reading import ContainerSample, MemoryReading
from shadowhound_llm_bench.core.decider.decision import Action, LoadedModel, Preparation
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import GIB

EMPTY = 1 * GIB  # working set of an Ollama server without models


def reading(working_set, budget=90 * GIB, reserve=15 * GIB):
    container = ContainerSample(stamp_s=0.0, working_set_bytes=working_set,
                                usage_bytes=working_set, limit_bytes=0)
    return MemoryReading(stamp_s=0.0, container=container, host_total_bytes=128 * GIB,
                         host_available_bytes=budget - working_set, ros_live_bytes=reserve,
                         ros_reserve_bytes=reserve, model_budget_bytes=budget)


def predicted(model, size, source="metadata"):
    return FootprintPrediction(model, size, source)


SEED = {"deepseek-r1:7b": 5 * GIB, "phi4:14b": 9 * GIB, "qwen2.5-coder:32b": 20 * GIB,
        "qwq:32b": 20 * GIB, "llama3.3:70b": 43 * GIB}
PREDICTIONS = {m: predicted(m, size) for m, size in SEED.items()}
CACHED = [LoadedModel(m, SEED[m]) for m in ("deepseek-r1:7b", "phi4:14b", "qwen2.5-coder:32b",
                                            "qwq:32b")]
CACHED_WS = EMPTY + sum(m.footprint_bytes for m in CACHED)  # 55 GiB: the seed's 56 GB


def test_the_seeds_failure_is_predicted_and_adaptive_unloads_the_fewest_models():
    policy = MemoryPolicy(preset_settings("adaptive"))
    decision = policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"],
                                   reading(CACHED_WS), CACHED, Preparation(EMPTY))
    assert decision.action is Action.UNLOAD_OTHERS
    # 43 GiB needed, 35 GiB free in the seed's 90 GB safe limit: 8 GiB short.
    assert set(decision.models_to_unload) <= {m.model for m in CACHED}
    freed = sum(SEED[m] for m in decision.models_to_unload)
    assert CACHED_WS - freed + SEED["llama3.3:70b"] <= 90 * GIB
    assert len(decision.models_to_unload) == 1  # fewest models, largest first
    assert "short" in decision.reason and "GiB" in decision.reason


def test_fast_loads_anyway_and_says_so():
    policy = MemoryPolicy(preset_settings("fast"))
    decision = policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"],
                                   reading(CACHED_WS), CACHED, Preparation(EMPTY))
    assert decision.action is Action.LOAD
    assert "predicted not to fit" in decision.reason and "makes no room" in decision.reason


def test_default_restarts_before_large_models_only_once():
    policy = MemoryPolicy(preset_settings("default"))
    done = Preparation(EMPTY)
    first = policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"], reading(EMPTY), [],
                                done)
    assert first.action is Action.RESTART and "restart threshold" in first.reason
    done.restarted = True
    assert policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"], reading(EMPTY), [],
                               done).action is Action.LOAD
    small = policy.before_model("phi4:14b", PREDICTIONS["phi4:14b"], reading(EMPTY), [],
                                Preparation(EMPTY))
    assert small.action is Action.LOAD and small.keep_alive == "5m"


def test_conservative_restarts_before_every_model():
    policy = MemoryPolicy(preset_settings("conservative"))
    for model, prediction in PREDICTIONS.items():
        decision = policy.before_model(model, prediction, reading(EMPTY), [], Preparation(EMPTY))
        assert decision.action is Action.RESTART and "every model" in decision.reason


def test_memory_not_back_after_unload_leads_to_restart_then_wait_then_skip():
    policy = MemoryPolicy(preset_settings("adaptive", memory_wait_s=2.0))
    leaked = reading(CACHED_WS)  # the unload did not give memory back
    done = Preparation(EMPTY, unloaded_others=True)
    assert policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"], leaked, [],
                               done).action is Action.RESTART
    done.restarted = True
    assert policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"], leaked, [],
                               done).action is Action.WAIT
    done.waited_s = 2.0
    skip = policy.before_model("llama3.3:70b", PREDICTIONS["llama3.3:70b"], leaked, [], done)
    assert skip.action is Action.SKIP
    assert "needs 43.00 GiB" in skip.reason and "budget 90.00 GiB" in skip.reason


def test_a_model_larger_than_the_whole_budget_is_skipped_with_numbers():
    policy = MemoryPolicy(preset_settings("default"))
    decision = policy.before_model("llama3.1:405b", predicted("llama3.1:405b", 230 * GIB),
                                   reading(EMPTY, budget=60 * GIB), [], Preparation(EMPTY))
    assert decision.action is Action.SKIP
    assert "230.00 GiB" in decision.reason and "59.00 GiB" in decision.reason


def test_a_grown_ros_reserve_shrinks_the_budget_and_skips_the_next_model():
    policy = MemoryPolicy(preset_settings("default", memory_wait_s=0.0))
    small_budget = reading(EMPTY, budget=8 * GIB, reserve=60 * GIB)
    decision = policy.before_model("phi4:14b", PREDICTIONS["phi4:14b"], small_budget, [],
                                   Preparation(EMPTY, restarted=True))
    assert decision.action is Action.SKIP and "ROS reserve 60.00 GiB" in decision.reason


def test_unknown_size_unloads_everything_first():
    policy = MemoryPolicy(preset_settings("adaptive"))
    unknown = FootprintPrediction("mystery:latest", 0, "unknown")
    decision = policy.before_model("mystery:latest", unknown, reading(CACHED_WS), CACHED,
                                   Preparation(EMPTY))
    assert decision.action is Action.UNLOAD_OTHERS and len(decision.models_to_unload) == 4


def test_pressure_alert_and_abort_limits():
    policy = MemoryPolicy(preset_settings("default", pressure_alert_percent=80.0))
    assert policy.check_pressure("m", reading(45 * GIB)).action is Action.KEEP
    alert = policy.check_pressure("m", reading(81 * GIB))
    assert alert.action is Action.ALERT and "90 %" in alert.reason
    abort = policy.check_pressure("m", reading(91 * GIB))
    assert abort.action is Action.ABORT and "abort limit 100 %" in abort.reason


def test_after_model_unloads_per_preset_and_under_pressure():
    assert MemoryPolicy(preset_settings("default")).after_model(
        "m", reading(10 * GIB)).action is Action.UNLOAD
    adaptive = MemoryPolicy(preset_settings("adaptive"))
    assert adaptive.after_model("m", reading(10 * GIB)).action is Action.KEEP
    assert adaptive.after_model("m", reading(80 * GIB)).action is Action.UNLOAD
    assert MemoryPolicy(preset_settings("fast")).after_model(
        "m", reading(80 * GIB)).action is Action.KEEP


def test_cleanup_is_judged_by_api_ps_and_released_memory():
    policy = MemoryPolicy(preset_settings("default"))
    good = policy.cleanup("m", still_listed=False, before_unload_bytes=21 * GIB,
                          after_unload_bytes=1 * GIB, footprint_bytes=20 * GIB)
    assert good.successful and good.released_bytes == 20 * GIB
    leak = policy.cleanup("m", still_listed=False, before_unload_bytes=21 * GIB,
                          after_unload_bytes=20 * GIB, footprint_bytes=20 * GIB)
    assert not leak.successful and leak.decision.action is Action.RESTART
    assert "stayed up" in leak.decision.reason
    listed = policy.cleanup("m", still_listed=True, before_unload_bytes=21 * GIB,
                            after_unload_bytes=1 * GIB, footprint_bytes=20 * GIB)
    assert not listed.successful and "/api/ps" in listed.decision.reason
    fast = MemoryPolicy(preset_settings("fast")).cleanup(
        "m", still_listed=False, before_unload_bytes=21 * GIB, after_unload_bytes=20 * GIB,
        footprint_bytes=20 * GIB)
    assert not fast.successful and fast.decision.action is Action.KEEP


def test_load_failure_restarts_retries_once_then_skips():
    policy = MemoryPolicy(preset_settings("default"))
    error = 'HTTP 500: do load request: Post "http://127.0.0.1:1/load": EOF'
    assert policy.on_load_failure("m", error, 1).action is Action.RETRY
    skip = policy.on_load_failure("m", error, 2)
    assert skip.action is Action.SKIP and "EOF" in skip.reason


def test_order_is_small_to_large_with_unknown_last():
    policy = MemoryPolicy(preset_settings("default"))
    predictions = dict(PREDICTIONS, **{"x:latest": FootprintPrediction("x:latest", 0, "unknown")})
    ordered = policy.order(["llama3.3:70b", "x:latest", "phi4:14b", "deepseek-r1:7b"],
                           predictions)
    assert ordered == ["deepseek-r1:7b", "phi4:14b", "llama3.3:70b", "x:latest"]
    given = MemoryPolicy(preset_settings("default", order="given"))
    assert given.order(["llama3.3:70b", "phi4:14b"], predictions) == ["llama3.3:70b", "phi4:14b"]


def test_dynamic_keep_alive_grows_with_free_memory():
    policy = MemoryPolicy(preset_settings("adaptive", dynamic_keep_alive=True,
                                          dynamic_keep_alive_max_s=600))
    assert policy.keep_alive(reading(9 * GIB)) == 540
    assert policy.keep_alive(reading(81 * GIB)) == 60
    assert policy.keep_alive(reading(89 * GIB)) == 30  # the minimum


def test_parallel_batches_only_when_they_fit_together():
    policy = MemoryPolicy(preset_settings("adaptive", parallel_small_models=True))
    ordered = policy.order(list(SEED), PREDICTIONS)
    batches = policy.batches(ordered, PREDICTIONS, reading(EMPTY, budget=40 * GIB), EMPTY)
    assert batches[0] == ["deepseek-r1:7b", "phi4:14b", "qwen2.5-coder:32b"]
    assert ["llama3.3:70b"] in batches
    serial = MemoryPolicy(preset_settings("adaptive")).batches(ordered, PREDICTIONS,
                                                               reading(EMPTY), EMPTY)
    assert all(len(b) == 1 for b in serial)


@pytest.mark.parametrize("preset,unloads,restarts", [
    ("default", 5, 1), ("conservative", 5, 5), ("adaptive", 2, 0), ("fast", 0, 0)])
def test_dry_run_predicts_the_seed_sequence(preset, unloads, restarts):
    policy = MemoryPolicy(preset_settings(preset))
    ordered = policy.order(list(SEED), PREDICTIONS)
    steps = policy.simulate(ordered, PREDICTIONS, reading(EMPTY), [], EMPTY)
    assert [s.model for s in steps] == ordered
    assert sum(s.unloads for s in steps) == unloads
    assert sum(s.restarts for s in steps) == restarts
    peak = max(s.predicted_peak_bytes for s in steps)
    if preset == "fast":
        assert peak > 90 * GIB  # the seed's 98 GB: everything cached plus the 70B model
    else:
        assert peak <= 90 * GIB and not any(s.skip_reason for s in steps)
