"""Cost-aware room making and recovery of a vanished server: pure policy decisions."""

from shadowhound_llm_bench.core.decider.action_costs import SEED_COSTS, ActionCosts
from shadowhound_llm_bench.core.memory.footprint import FootprintPrediction
from shadowhound_llm_bench.core.memory.memory_reading import (
    ContainerSample, ContainerState, MemoryReading)
from shadowhound_llm_bench.core.decider.decision import Action, LoadedModel, Preparation
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import GIB

EMPTY = 1 * GIB
BUDGET = 70 * GIB
# The sim's measured costs on this machine (thor at 1/8 time): unload 0.3 s, restart 0.41 s.
MEASURED = ActionCosts(unload_s=0.3, restart_s=0.41, unload_source="measured",
                       restart_source="measured")


def reading(working_set):
    container = ContainerSample(stamp_s=0.0, working_set_bytes=working_set,
                                usage_bytes=working_set, limit_bytes=0)
    return MemoryReading(stamp_s=0.0, container=container, host_total_bytes=128 * GIB,
                         host_available_bytes=BUDGET - working_set, ros_live_bytes=15 * GIB,
                         ros_reserve_bytes=15 * GIB, model_budget_bytes=BUDGET)


def decide(cached, need, costs, preset="adaptive", mates=(), restarted=False):
    policy = MemoryPolicy(preset_settings(preset))
    loaded = [LoadedModel(m, size) for m, size in cached.items()]
    done = Preparation(EMPTY, costs=costs, reserved_for=tuple(mates), restarted=restarted)
    ws = EMPTY + sum(cached.values())
    return policy.before_model("llama3.3:70b", FootprintPrediction("llama3.3:70b", need,
                                                                   "metadata"),
                               reading(ws), loaded, done)


# After qwq was unloaded under pressure: phi4 9 GiB and the leaking qwen2.5-coder 20 GiB cached;
# llama3.3:70b (43 GiB) is 3 GiB short, so qwen2.5-coder (69 % of the cache) must go.
SEED_CACHE = {"phi4:14b": 9 * GIB, "qwen2.5-coder:32b": 20 * GIB}
# A small unload: five 10 GiB models cached, a 25 GiB model 6 GiB short -> one of five (20 %).
WIDE_CACHE = {f"m{i}": 10 * GIB for i in range(5)}


def test_without_measurements_the_seeds_costs_still_prefer_unloads():
    decision = decide(SEED_CACHE, 43 * GIB, SEED_COSTS)
    assert SEED_COSTS.unload_s == 2.0 and SEED_COSTS.restart_s == 15.0
    assert decision.action is Action.UNLOAD_OTHERS
    assert decision.models_to_unload == ("qwen2.5-coder:32b",)


def test_freeing_most_of_the_cache_with_a_comparable_restart_restarts_with_both_costs():
    decision = decide(SEED_CACHE, 43 * GIB, MEASURED)
    assert decision.action is Action.RESTART
    assert "restart instead of unloading" in decision.reason
    assert "most of what is cached" in decision.reason
    assert "0.30 s" in decision.reason and "0.41 s" in decision.reason  # both costs
    assert "69 %" in decision.reason and "measured" in decision.reason


def test_a_cheaper_measured_restart_wins_even_for_a_small_unload():
    cheap = ActionCosts(unload_s=1.0, restart_s=0.5, unload_source="measured",
                        restart_source="measured")
    assert 25 * GIB - (BUDGET - EMPTY - 50 * GIB) == 6 * GIB
    decision = decide(WIDE_CACHE, 25 * GIB, cheap)
    assert decision.action is Action.RESTART and "the restart is cheaper" in decision.reason
    assert "1.00 s" in decision.reason and "0.50 s" in decision.reason


def test_a_small_unload_beats_a_dearer_restart():
    decision = decide(WIDE_CACHE, 25 * GIB, MEASURED)
    assert decision.action is Action.UNLOAD_OTHERS and len(decision.models_to_unload) == 1


def test_a_restart_far_dearer_than_the_unloads_is_not_taken_even_when_freeing_most():
    dear = ActionCosts(unload_s=0.3, restart_s=5.0, unload_source="measured",
                       restart_source="measured")
    assert decide(SEED_CACHE, 43 * GIB, dear).action is Action.UNLOAD_OTHERS


def test_only_the_cost_aware_preset_restarts_instead_of_unloading():
    settings = preset_settings("default", restart_before_models_over_bytes=None)
    assert not settings.cost_aware_room and preset_settings("adaptive").cost_aware_room
    policy = MemoryPolicy(settings)
    loaded = [LoadedModel(m, size) for m, size in SEED_CACHE.items()]
    decision = policy.before_model(
        "llama3.3:70b", FootprintPrediction("llama3.3:70b", 43 * GIB, "metadata"),
        reading(EMPTY + 29 * GIB), loaded, Preparation(EMPTY, costs=MEASURED))
    assert decision.action is Action.UNLOAD_OTHERS


def test_no_cost_restart_beside_loaded_batch_mates_or_after_a_restart():
    beside = decide(SEED_CACHE, 43 * GIB, MEASURED, mates=("phi4:14b",))
    assert beside.action is not Action.RESTART  # a restart would evict the batch-mate
    again = decide(SEED_CACHE, 43 * GIB, MEASURED, restarted=True)
    assert again.action is Action.UNLOAD_OTHERS


def test_the_dry_run_plans_the_restart_with_measured_costs():
    policy = MemoryPolicy(preset_settings("adaptive", order="given"))
    sizes = {"phi4:14b": 9 * GIB, "qwen2.5-coder:32b": 20 * GIB, "llama3.3:70b": 43 * GIB}
    predictions = {m: FootprintPrediction(m, s, "metadata") for m, s in sizes.items()}
    order = list(sizes)
    # 70 GiB budget: phi4 + coder cached leave 40 GiB, llama needs 43.
    seed = policy.simulate(order, predictions, reading(EMPTY), [], EMPTY)
    measured = policy.simulate(order, predictions, reading(EMPTY), [], EMPTY, costs=MEASURED)
    assert seed[-1].actions_before == ["unload_others"]
    assert measured[-1].actions_before == ["restart"] and measured[-1].restarts == 1


def test_a_stopped_container_is_restarted_once_a_removed_one_is_given_up():
    policy = MemoryPolicy(preset_settings("adaptive"))
    stopped = policy.on_server_lost("phi4:14b", "connection refused", 1, ContainerState.STOPPED)
    assert stopped.action is Action.RESTART
    assert "container stopped" in stopped.reason and "retry phi4:14b once" in stopped.reason
    again = policy.on_server_lost("phi4:14b", "connection refused", 2, ContainerState.RUNNING)
    assert again.action is Action.SKIP and "again after a restart" in again.reason
    removed = policy.on_server_lost("phi4:14b", "connection refused", 1, ContainerState.MISSING)
    assert removed.action is Action.SKIP and "removed" in removed.reason
    off = MemoryPolicy(preset_settings("adaptive", restart_when_unreachable=False))
    assert off.on_server_lost("phi4:14b", "x", 1, ContainerState.STOPPED).action is Action.SKIP
