"""How much memory the Ollama container may hold: the one formula every layer uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetInputs:
    """Live readings and settings the budget is derived from (all bytes)."""

    host_total_bytes: int
    host_available_bytes: int
    container_working_set_bytes: int
    container_limit_bytes: int  # 0 = no limit
    ros_live_bytes: int
    ros_reserve_bytes: int
    safety_buffer_bytes: int


def simulated_host_available_bytes(
    *,
    host_total_bytes: int,
    system_reserve_bytes: int,
    ros_live_bytes: int,
    container_working_set_bytes: int,
) -> int:
    """Return the MemAvailable of a simulated machine whose total is configured, not read."""
    used = system_reserve_bytes + ros_live_bytes + container_working_set_bytes
    return max(0, host_total_bytes - used)


def model_budget_bytes(inputs: BudgetInputs) -> int:
    """
    Return the total memory the container may hold, sparing the ROS reserve and safety buffer.

    Host available memory already excludes what ROS uses now, so only the part of the reserve that
    ROS has not used yet is held back: budget = working set + available - unused reserve - buffer,
    capped by the container's own limit.
    """
    unused_ros_reserve = max(0, inputs.ros_reserve_bytes - inputs.ros_live_bytes)
    budget = (
        inputs.container_working_set_bytes
        + inputs.host_available_bytes
        - unused_ros_reserve
        - inputs.safety_buffer_bytes
    )
    if inputs.container_limit_bytes > 0:
        budget = min(budget, inputs.container_limit_bytes - inputs.safety_buffer_bytes)
    return max(0, budget)
