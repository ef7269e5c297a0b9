"""Diagnostics content: pressure level with numbers, top ROS consumers, container state."""

import dataclasses

from shadowhound_llm_bench.core.platform.diagnostic_summary import (
    Level, container_status, pressure_status, ros_consumers_status)
from shadowhound_llm_bench.core.memory.memory_reading import (
    ContainerSample, ContainerState, MemoryReading)
from shadowhound_llm_bench.core.units import GIB


def reading(working_set_gib, budget_gib=100.0, state=ContainerState.RUNNING, stamp_s=1000.0):
    sample = ContainerSample(stamp_s=stamp_s, working_set_bytes=int(working_set_gib * GIB),
                             usage_bytes=int(working_set_gib * GIB), limit_bytes=0, state=state)
    return MemoryReading(stamp_s=stamp_s, container=sample, host_total_bytes=128 * GIB,
                         host_available_bytes=60 * GIB, ros_live_bytes=12 * GIB,
                         ros_reserve_bytes=15 * GIB, model_budget_bytes=int(budget_gib * GIB),
                         loaded_models=1)


def level_at(working_set_gib):
    return pressure_status(reading(working_set_gib), warn_percent=80.0, error_percent=95.0,
                           now_s=1000.5, stale_after_s=5.0).level


def test_pressure_levels_follow_the_thresholds():
    assert level_at(50.0) == Level.OK
    assert level_at(85.0) == Level.WARN
    assert level_at(96.0) == Level.ERROR


def test_pressure_status_carries_the_numbers():
    status = pressure_status(reading(85.0), warn_percent=80.0, error_percent=95.0,
                             now_s=1000.5, stale_after_s=5.0)
    values = dict(status.values)
    assert values["working_set_gib"] == "85.00" and values["model_budget_gib"] == "100.00"
    assert values["pressure_percent"] == "85.0" and values["ros_reserve_gib"] == "15.00"
    assert "85.00 GiB of 100.00 GiB budget" in status.message


def test_old_or_missing_readings_are_stale():
    assert pressure_status(None, warn_percent=80, error_percent=95, now_s=0,
                           stale_after_s=5).level == Level.STALE
    assert pressure_status(reading(10.0), warn_percent=80, error_percent=95, now_s=1010.0,
                           stale_after_s=5.0).level == Level.STALE


def test_top_consumers_are_listed_largest_first():
    status = ros_consumers_status([("planner_server", 1 * GIB), ("controller_server", 3 * GIB),
                                   ("amcl", GIB // 2)], live_bytes=int(4.5 * GIB))
    assert [k for k, _ in status.values] == ["ros_live_gib", "controller_server",
                                             "planner_server", "amcl"]
    assert status.message.startswith("4.50 GiB in ROS processes; largest controller_server")


def test_container_state_sets_the_level():
    assert container_status(reading(1.0), container_name="ollama",
                            benchmark_state="idle").level == Level.OK
    stopped = container_status(reading(1.0, state=ContainerState.MISSING),
                               container_name="ollama", benchmark_state="testing phi4:14b")
    assert stopped.level == Level.ERROR
    assert stopped.message.startswith("ollama missing; benchmark testing phi4:14b. Fix: ")
    assert "container.name" in stopped.message
    halted = container_status(reading(1.0, state=ContainerState.STOPPED),
                              container_name="ollama", benchmark_state="idle")
    assert halted.level == Level.ERROR
    assert "Fix: start it (docker start ollama), or send a goal" in halted.message


def test_the_container_status_names_the_backend_and_why():
    why = "backend auto chose systemd unit ollama.service (running) because: no container"
    status = container_status(reading(1.0), container_name="ollama", benchmark_state="idle",
                              backend=why)
    assert ("backend", why) in status.values
    plain = container_status(reading(1.0), container_name="ollama", benchmark_state="idle")
    assert "backend" not in dict(plain.values)


def test_the_pressure_message_names_the_quantity_its_percentage_is_of():
    # Model memory read from the host (unified memory) differs from the container working set.
    base = reading(85.0)
    unified = dataclasses.replace(base, model_memory_bytes=int(0.84 * 2 ** 30 * 0.814),
                                  source="host_used", model_budget_bytes=int(0.84 * 2 ** 30))
    status = pressure_status(unified, warn_percent=80.0, error_percent=95.0,
                             now_s=1000.5, stale_after_s=5.0)
    assert "model memory (host_used) 0.68 GiB of 0.84 GiB budget (81.4 % of the budget)" \
        in status.message
    assert "container working set 85.00 GiB" in status.message
    assert dict(status.values)["model_memory_gib"] == "0.68"
