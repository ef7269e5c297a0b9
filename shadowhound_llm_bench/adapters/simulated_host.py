"""
The host memory of a simulated machine (the simulator's scenarios), never of a robot.

Its total is configured (node parameter simulation.total_gib), not read: available memory is
derived from the total, the system's reserve, live ROS memory and the container's working set.
"""

from __future__ import annotations

from ..core.decider.memory_budget import simulated_host_available_bytes
from ..core.memory.memory_sources import HostMeminfo


class SimulatedHost:
    """A machine of a configured size: available memory is derived (MemFree is not read)."""

    def __init__(self, *, total_bytes: int, system_reserve_bytes: int) -> None:
        if total_bytes <= 0 or not 0 <= system_reserve_bytes < total_bytes:
            raise ValueError("need total_bytes > system_reserve_bytes >= 0")
        self.total_bytes = total_bytes
        self.system_reserve_bytes = system_reserve_bytes

    def sample(self, *, ros_live_bytes: int,
               container_working_set_bytes: int) -> HostMeminfo:
        """Total minus system reserve, live ROS memory and the container's working set."""
        available = simulated_host_available_bytes(
            host_total_bytes=self.total_bytes, system_reserve_bytes=self.system_reserve_bytes,
            ros_live_bytes=ros_live_bytes,
            container_working_set_bytes=container_working_set_bytes)
        return HostMeminfo(self.total_bytes, available)
