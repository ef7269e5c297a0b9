"""What /diagnostics says about memory pressure, ROS consumers and the container (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import List, Optional, Sequence, Tuple

from ..memory.memory_reading import ContainerState, MemoryReading
from ..units import to_gib


class Level(IntEnum):
    """Numbers match diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class StatusSummary:
    """One DiagnosticStatus without ROS types."""

    name: str
    level: Level
    message: str
    values: List[Tuple[str, str]] = field(default_factory=list)


def _gib_text(n_bytes: float) -> str:
    return f"{to_gib(n_bytes):.2f}"


def pressure_status(reading: Optional[MemoryReading], *, warn_percent: float,
                    error_percent: float, now_s: float, stale_after_s: float) -> StatusSummary:
    """OK / WARN / ERROR from the container working set against the model budget."""
    name = "llm_bench: memory pressure"
    if reading is None:
        return StatusSummary(name, Level.STALE, "no memory reading yet")
    age_s = now_s - reading.stamp_s
    pressure = reading.pressure_percent
    ws = reading.container.working_set_bytes
    # The percentage is of the memory in use by the chosen sources: name that quantity.
    message = (f"model memory ({reading.source}) {to_gib(reading.memory_in_use_bytes):.2f} GiB "
               f"of {to_gib(reading.model_budget_bytes):.2f} GiB budget ({pressure:.1f} % of "
               f"the budget), container working set {to_gib(ws):.2f} GiB, ROS reserve "
               f"{to_gib(reading.ros_reserve_bytes):.2f} GiB")
    if age_s > stale_after_s:
        level, message = Level.STALE, f"last reading {age_s:.1f} s old; " + message
    elif pressure >= error_percent:
        level = Level.ERROR
        message = f"over {error_percent:g} % of the budget: " + message
    elif pressure >= warn_percent:
        level = Level.WARN
        message = f"over {warn_percent:g} % of the budget: " + message
    else:
        level = Level.OK
    values = [
        ("model_memory_gib", _gib_text(reading.memory_in_use_bytes)),
        ("model_memory_source", reading.source),
        ("working_set_gib", _gib_text(ws)),
        ("usage_gib", _gib_text(reading.container.usage_bytes)),
        ("limit_gib", _gib_text(reading.container.limit_bytes)),
        ("model_budget_gib", _gib_text(reading.model_budget_bytes)),
        ("budget_headroom_gib", _gib_text(reading.budget_headroom_bytes)),
        ("pressure_percent", f"{pressure:.1f}"),
        ("host_total_gib", _gib_text(reading.host_total_bytes)),
        ("host_available_gib", _gib_text(reading.host_available_bytes)),
        ("ros_live_gib", _gib_text(reading.ros_live_bytes)),
        ("ros_reserve_gib", _gib_text(reading.ros_reserve_bytes)),
        ("loaded_models", str(reading.loaded_models)),
        ("warn_percent", f"{warn_percent:g}"),
        ("error_percent", f"{error_percent:g}"),
        ("reading_age_s", f"{age_s:.2f}"),
    ]
    return StatusSummary(name, level, message, values)


def ros_consumers_status(top: Sequence[Tuple[str, int]], *, live_bytes: Optional[int],
                         limit: int = 5) -> StatusSummary:
    """Summarize the largest ROS 2 / Nav2 memory consumers, biggest first."""
    name = "llm_bench: ROS consumers"
    if live_bytes is None:
        return StatusSummary(name, Level.STALE, "no ROS process scan yet")
    ranked = sorted(top, key=lambda item: item[1], reverse=True)[:limit]
    if ranked:
        message = f"{to_gib(live_bytes):.2f} GiB in ROS processes; largest " + ", ".join(
            f"{n} {to_gib(b):.2f} GiB" for n, b in ranked[:3])
    else:
        message = f"{to_gib(live_bytes):.2f} GiB in ROS processes; none found"
    values = [("ros_live_gib", _gib_text(live_bytes))]
    values.extend((n, f"{to_gib(b):.3f} GiB") for n, b in ranked)
    return StatusSummary(name, Level.OK, message, values)


_STATE_LEVEL = {ContainerState.RUNNING: Level.OK, ContainerState.RESTARTING: Level.WARN,
                ContainerState.UNKNOWN: Level.WARN, ContainerState.STOPPED: Level.ERROR,
                ContainerState.MISSING: Level.ERROR}


def container_fix(state: ContainerState, container_name: str) -> str:
    """Say what an operator does about a container that is not running ("" when it runs)."""
    if state is ContainerState.STOPPED:
        return (f"start it (docker start {container_name}), or send a goal: the node starts "
                "it as the memory policy restarts a lost server")
    if state is ContainerState.MISSING:
        return (f"create the Ollama container named {container_name!r}, or set the "
                "container.name parameter to the container Ollama runs in")
    return ""


def container_status(reading: Optional[MemoryReading], *, container_name: str,
                     benchmark_state: str, backend: str = "",
                     waiting_fix: str = "") -> StatusSummary:
    """Report the Ollama container's state, which backend measures it and the benchmark."""
    name = "llm_bench: Ollama container"
    if reading is None:
        return StatusSummary(name, Level.STALE, f"{container_name}: no reading yet",
                             [("benchmark", benchmark_state)])
    state = reading.container.state
    message = f"{container_name} {state.name.lower()}; benchmark {benchmark_state}"
    fix = container_fix(state, container_name)
    level = _STATE_LEVEL[state]
    if fix:
        message = f"{message}. Fix: {fix}"
    elif waiting_fix:  # `auto` found only the API and still looks: WARN with the fix
        level, message = max(level, Level.WARN), f"{container_name}: {waiting_fix}"
    return StatusSummary(name, level, message,
                         [("container", container_name), ("state", state.name.lower()),
                          ("loaded_models", str(reading.loaded_models)),
                          ("benchmark", benchmark_state)]
                         + ([("backend", backend)] if backend else []))
