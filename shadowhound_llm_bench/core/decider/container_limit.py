"""
The container's memory limit that keeps step with the model budget (the kernel's backstop).

Pure: from one reading, the limit the container should have. The limit is what the container may
hold before the ROS reserve is touched (the budget without the limit's own cap, plus the safety
buffer), never below what the container holds now plus a margin: a limit under the working set
would make the kernel kill the loaded model mid-answer, so the memory is freed by an unload
first (the preemption watchdog does that on the same reading) and the limit follows it down.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory_budget import BudgetInputs, model_budget_bytes
from ..memory.memory_reading import MemoryReading
from ..units import to_gib


@dataclass(frozen=True)
class LimitDecision:
    """The limit the container should have now, whether to change it, and why (with numbers)."""

    limit_bytes: int
    change: bool
    reason: str


def container_limit_for(reading: MemoryReading, *, current_limit_bytes: int,
                        safety_buffer_bytes: int, floor_margin_bytes: int,
                        min_change_bytes: int) -> LimitDecision:
    """Return the limit that follows the budget, and whether it moved enough to be set."""
    uncapped = model_budget_bytes(BudgetInputs(
        host_total_bytes=reading.host_total_bytes,
        host_available_bytes=reading.host_available_bytes,
        container_working_set_bytes=reading.container.working_set_bytes,
        container_limit_bytes=0, ros_live_bytes=reading.ros_live_bytes,
        ros_reserve_bytes=reading.ros_reserve_bytes, safety_buffer_bytes=safety_buffer_bytes))
    follows = uncapped + safety_buffer_bytes
    floor = reading.container.working_set_bytes + floor_margin_bytes
    limit = max(follows, floor)
    numbers = (f"budget {to_gib(uncapped):.3f} GiB + safety buffer "
               f"{to_gib(safety_buffer_bytes):.3f} GiB, working set "
               f"{to_gib(reading.container.working_set_bytes):.3f} GiB, ROS reserve "
               f"{to_gib(reading.ros_reserve_bytes):.3f} GiB")
    if follows < floor:
        reason = (f"container limit held at the working set + margin "
                  f"{to_gib(floor):.3f} GiB (the models must be unloaded before it can follow "
                  f"the budget down); {numbers}")
    else:
        reason = f"container limit follows the budget: {to_gib(limit):.3f} GiB; {numbers}"
    change = current_limit_bytes <= 0 or abs(limit - current_limit_bytes) >= min_change_bytes
    return LimitDecision(limit_bytes=limit, change=change, reason=reason)
