"""Dropping the page cache: with the privilege, without it, and the policy's next option."""

import json
import os

import pytest

from shadowhound_llm_bench.adapters.memory_sources import CacheDropper
from shadowhound_llm_bench.core.decider import memfree_rule
from shadowhound_llm_bench.core.memory.footprint import FootprintPrediction
from shadowhound_llm_bench.core.memory.memory_reading import ContainerSample, MemoryReading
from shadowhound_llm_bench.core.decider.decision import Action, Preparation
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings

from source_files import GIB, MIB, file_mode

REFUSAL = "model requires more system memory (59.8 GiB) than is available (59.8 GiB)"


def test_with_the_privilege_the_file_gets_3(tmp_path):
    target = tmp_path / "drop_caches"
    target.write_text("")
    dropper = CacheDropper(path=str(target))
    outcome = dropper.drop()
    assert outcome.dropped and dropper.privileged is True
    assert target.read_text() == "3\n"
    assert dropper.drop().dropped and dropper.calls == 2


def _drop_as_nobody(path):
    """Run CacheDropper in a child process that gave up root; return what it saw."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            dropper = CacheDropper(path=path)
            first = dropper.drop()
            second = dropper.drop()
            report = {"first": [first.dropped, first.privileged, first.message],
                      "second": [second.dropped, second.message], "calls": dropper.calls}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start an unprivileged child")
def test_without_the_privilege_it_says_so_once_and_does_not_try_again(tmp_path):
    target = tmp_path / "drop_caches"
    target.write_text("")
    os.chmod(target, 0o644)  # root may write it, nobody may not
    seen = _drop_as_nobody(str(target))
    dropped, privileged, message = seen["first"]
    assert not dropped and privileged is False
    assert "cannot drop the page cache" in message and str(target) in message
    assert "privilege" in message
    assert seen["second"] == [False, message]  # the same reason, no second attempt
    assert seen["calls"] == 1
    assert target.read_text() == "" and file_mode(target) == 0o644


def test_a_directory_is_not_a_drop_caches_file(tmp_path):
    dropper = CacheDropper(path=str(tmp_path))
    outcome = dropper.drop()
    assert not outcome.dropped and not outcome.privileged
    assert "cannot drop the page cache" in outcome.message


def _reading(*, source, free, available, in_use=200 * MIB, budget=6 * GIB):
    return MemoryReading(
        stamp_s=0.0, container=ContainerSample(0.0, in_use, in_use, 0),
        host_total_bytes=8 * GIB, host_available_bytes=available, ros_live_bytes=0,
        ros_reserve_bytes=GIB, model_budget_bytes=budget, model_memory_bytes=in_use,
        source=source, host_free_bytes=free)


def _policy(**changes):
    return MemoryPolicy(preset_settings("default", **changes))


def test_cleanup_drops_caches_first_then_restarts_when_the_memory_stayed_up():
    policy = _policy()
    judge = dict(still_listed=False, before_unload_bytes=GIB, after_unload_bytes=GIB,
                 footprint_bytes=GIB)
    first = policy.cleanup("m", can_drop_caches=True, **judge)
    assert first.decision.action is Action.DROP_CACHES and not first.successful
    after_drop = policy.cleanup("m", dropped_caches=True, **judge)
    assert after_drop.decision.action is Action.RESTART
    refused = policy.cleanup("m", can_drop_caches=False, **judge)
    assert refused.decision.action is Action.RESTART  # no privilege: the next option
    never = _policy(drop_caches="never").cleanup("m", can_drop_caches=True, **judge)
    assert never.decision.action is Action.RESTART


def test_a_stalled_reclaim_is_answered_by_a_drop_even_when_the_model_left():
    policy = _policy()
    judge = dict(still_listed=False, before_unload_bytes=GIB, after_unload_bytes=0,
                 footprint_bytes=GIB)
    stalled = policy.cleanup("m", reclaim_stalled=True, can_drop_caches=True, **judge)
    assert stalled.decision.action is Action.DROP_CACHES
    assert "did not get it back" in stalled.decision.reason
    assert policy.cleanup("m", reclaim_stalled=False, can_drop_caches=True, **judge).successful


def test_ollamas_false_refusal_is_answered_by_a_drop_then_by_the_usual_retry():
    policy = _policy()
    drop = policy.on_load_failure("m", REFUSAL, 1, can_drop_caches=True)
    assert drop.action is Action.DROP_CACHES and "page cache" in drop.reason
    assert policy.on_load_failure("m", REFUSAL, 1).action is Action.RETRY
    assert policy.on_load_failure("m", "EOF", 1, can_drop_caches=True).action is Action.RETRY


def test_free_memory_short_while_available_suffices_drops_before_the_load():
    policy = _policy()
    need = 2 * GIB
    prediction = FootprintPrediction("m", need, "metadata")
    unified = _reading(source="cgroup_anon+gpu_processes", free=GIB, available=5 * GIB)
    done = Preparation(empty_working_set_bytes=200 * MIB, can_drop_caches=True)
    decision = policy.before_model("m", prediction, unified, [], done)
    assert decision.action is Action.DROP_CACHES and decision.drop_level == 1
    assert "MemFree 1.000 GiB < next allocation" in decision.reason
    # Still short after level 1: a moment for the drop to show, then level 3 (the driver's
    # pool), then a wait within memory_wait_s; then the load goes ahead.
    done.dropped_caches, done.drop_levels = True, (1,)
    assert policy.before_model("m", prediction, unified, [], done).action is Action.WAIT
    done.waited_s = memfree_rule.SETTLE_S
    decision = policy.before_model("m", prediction, unified, [], done)
    assert decision.action is Action.DROP_CACHES and decision.drop_level == 3
    done.drop_levels = (1, 3)
    assert policy.before_model("m", prediction, unified, [], done).action is Action.WAIT
    done.waited_s = policy.settings.memory_wait_s
    assert policy.before_model("m", prediction, unified, [], done).action is Action.LOAD
    # MemFree back above the model (its prediction and margin): load at once.
    back = _reading(source="cgroup_anon+gpu_processes", free=3 * GIB, available=5 * GIB)
    fresh = Preparation(empty_working_set_bytes=200 * MIB, can_drop_caches=True)
    assert policy.before_model("m", prediction, back, [], fresh).action is Action.LOAD
    # A cgroup-charged machine: Ollama does not count free memory only; nothing to drop.
    charged = _reading(source="cgroup_anon", free=GIB, available=5 * GIB)
    fresh = Preparation(empty_working_set_bytes=200 * MIB, can_drop_caches=True)
    assert policy.before_model("m", prediction, charged, [], fresh).action is Action.LOAD
    # Without the privilege the load goes ahead (Ollama may refuse; the retry path handles it).
    no_right = Preparation(empty_working_set_bytes=200 * MIB, can_drop_caches=False)
    assert policy.before_model("m", prediction, unified, [], no_right).action is Action.LOAD
