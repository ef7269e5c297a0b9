"""The policy's preemption and container-limit rules on readings of a 128 GB Thor."""

from shadowhound_llm_bench.core.decider.container_limit import container_limit_for
from shadowhound_llm_bench.core.memory.memory_reading import ContainerSample, MemoryReading
from shadowhound_llm_bench.core.decider.decision import Action
from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.decider.preemption import find_breach, ros_headroom_bytes
from shadowhound_llm_bench.core.units import GIB

POLICY = MemoryPolicy(preset_settings("default", preempt_wait_s=30.0))


def thor(working_set, available, ros_live=12 * GIB, ros_reserve=16 * GIB, budget=None):
    budget = budget if budget is not None else working_set + available - max(
        0, ros_reserve - ros_live) - 2 * GIB
    return MemoryReading(
        stamp_s=1.0, container=ContainerSample(1.0, working_set, working_set, 0),
        host_total_bytes=128 * GIB, host_available_bytes=available, ros_live_bytes=ros_live,
        ros_reserve_bytes=ros_reserve, model_budget_bytes=max(0, budget))


def test_no_breach_while_ros_has_its_reserve_and_pressure_is_low():
    reading = thor(working_set=45 * GIB, available=40 * GIB)
    assert ros_headroom_bytes(reading) == 36 * GIB
    assert find_breach(reading, error_percent=100) is None
    assert POLICY.on_sample(reading, held_bytes=44 * GIB, in_flight=["llama3.3:70b"]).action \
        is Action.KEEP


def test_nav2_eating_into_its_reserve_preempts_the_load_in_flight_with_the_numbers():
    reading = thor(working_set=45 * GIB, available=2 * GIB, ros_live=12 * GIB)
    breach = find_breach(reading, error_percent=100)
    assert breach is not None and "under the ROS reserve" in breach.why
    decision = POLICY.on_sample(reading, held_bytes=44 * GIB, in_flight=["llama3.3:70b"])
    assert decision.action is Action.PREEMPT
    assert decision.models_to_unload == ("llama3.3:70b",)
    assert "ROS headroom -2.000 GiB" in decision.reason and "reserve 16.000 GiB" in decision.reason


def test_a_breach_with_nothing_loaded_only_alerts():
    reading = thor(working_set=1 * GIB, available=1 * GIB)
    decision = POLICY.on_sample(reading, held_bytes=0, in_flight=[])
    assert decision.action is Action.ALERT and "no model holds memory" in decision.reason


def test_memory_rising_after_the_unload_means_restart():
    decision = POLICY.while_preempting(since_unload_s=0.3, held_after_unload_bytes=20 * GIB,
                                       held_now_bytes=26 * GIB, budget_bytes=60 * GIB,
                                       restarted=False)
    assert decision.action is Action.RESTART and "keeps rising" in decision.reason
    waiting = POLICY.while_preempting(since_unload_s=0.3, held_after_unload_bytes=20 * GIB,
                                      held_now_bytes=18 * GIB, budget_bytes=60 * GIB,
                                      restarted=False)
    assert waiting.action is Action.WAIT
    late = POLICY.while_preempting(since_unload_s=11.0, held_after_unload_bytes=20 * GIB,
                                   held_now_bytes=20 * GIB, budget_bytes=60 * GIB,
                                   restarted=False)
    assert late.action is Action.RESTART and "not released within 10.0 s" in late.reason


def test_after_a_preemption_go_on_wait_or_end():
    back = thor(working_set=1 * GIB, available=60 * GIB)
    assert POLICY.after_preemption(back, waited_s=0.0).action is Action.LOAD
    still = thor(working_set=1 * GIB, available=1 * GIB)
    assert POLICY.after_preemption(still, waited_s=5.0).action is Action.WAIT
    assert POLICY.after_preemption(still, waited_s=31.0).action is Action.END_RUN


def test_the_container_limit_follows_the_budget_but_not_under_the_loaded_model():
    roomy = thor(working_set=45 * GIB, available=40 * GIB)
    decision = container_limit_for(roomy, current_limit_bytes=0, safety_buffer_bytes=2 * GIB,
                                   floor_margin_bytes=GIB, min_change_bytes=GIB // 4)
    assert decision.limit_bytes == 45 * GIB + 40 * GIB - 4 * GIB and decision.change
    tight = thor(working_set=45 * GIB, available=1 * GIB)
    held = container_limit_for(tight, current_limit_bytes=decision.limit_bytes,
                               safety_buffer_bytes=2 * GIB, floor_margin_bytes=GIB,
                               min_change_bytes=GIB // 4)
    assert held.limit_bytes == 46 * GIB and "unloaded before" in held.reason
    same = container_limit_for(roomy, current_limit_bytes=decision.limit_bytes + GIB // 8,
                               safety_buffer_bytes=2 * GIB, floor_margin_bytes=GIB,
                               min_change_bytes=GIB // 4)
    assert not same.change  # small moves are not worth a Docker call


def test_with_nothing_held_a_preemption_never_restarts():
    held_nothing = POLICY.while_preempting(since_unload_s=11.0, held_after_unload_bytes=0,
                                           held_now_bytes=0, budget_bytes=0, restarted=False)
    assert held_nothing.action is Action.WAIT and "models hold nothing" in held_nothing.reason
