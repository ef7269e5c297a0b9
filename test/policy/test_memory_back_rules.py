"""On unified memory the robot has its memory back only when its headroom is back: drop first."""

import dataclasses

from shadowhound_llm_bench.core.memory.memory_reading import ContainerSample, MemoryReading
from shadowhound_llm_bench.core.decider.decision import Action
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import GIB

POLICY = MemoryPolicy(preset_settings("adaptive", preempt_wait_s=30.0))
UNIFIED = "gpu_processes+cgroup_anon"


def pooled(source=UNIFIED, available=2 * GIB):
    """After the unload on a Thor: no model holds memory, the driver's pool holds 43 GB."""
    return MemoryReading(
        stamp_s=1.0, container=ContainerSample(1.0, GIB, GIB, 0), host_total_bytes=128 * GIB,
        host_available_bytes=available, ros_live_bytes=12 * GIB, ros_reserve_bytes=16 * GIB,
        model_budget_bytes=GIB, host_free_bytes=available, source=source)


def released(reading, **drops):
    return POLICY.while_preempting(since_unload_s=0.4, held_after_unload_bytes=43 * GIB,
                                   held_now_bytes=0, budget_bytes=50 * GIB, restarted=False,
                                   models_released=True, reading=reading, **drops)


def test_models_gone_and_headroom_short_on_unified_memory_drops_the_caches():
    decision = released(pooled(), can_drop_caches=True)
    assert decision.action is Action.DROP_CACHES
    assert "did not get it back" in decision.reason and "MemFree 2.000 GiB" in decision.reason


def test_no_second_drop_no_drop_without_privilege_and_none_on_a_cgroup_machine():
    assert released(pooled(), can_drop_caches=True, dropped_caches=True).action is Action.KEEP
    assert released(pooled(), can_drop_caches=False).action is Action.KEEP
    assert released(pooled(source="cgroup_anon"), can_drop_caches=True).action is Action.KEEP


def test_headroom_back_needs_no_drop():
    assert released(pooled(available=40 * GIB), can_drop_caches=True).action is Action.KEEP


def test_a_run_never_ends_waiting_for_memory_only_a_drop_returns():
    late = POLICY.after_preemption(pooled(), waited_s=31.0, can_drop_caches=True)
    assert late.action is Action.DROP_CACHES and "before waiting" in late.reason
    after = POLICY.after_preemption(pooled(), waited_s=31.0, can_drop_caches=True,
                                    dropped_caches=True)
    assert after.action is Action.END_RUN  # the drop was tried: the memory is really taken
    back = dataclasses.replace(pooled(), host_available_bytes=40 * GIB,
                               model_budget_bytes=30 * GIB)
    assert POLICY.after_preemption(back, waited_s=0.0, can_drop_caches=True).action \
        is Action.LOAD
