"""
Preemption rules of the memory policy: when the robot takes the memory back, and what comes next.

Pure functions over one reading (no I/O); core/decider/policy.py's MemoryPolicy calls them and the
preemption watchdog (engine/preemption.py) carries the decisions out on every memory sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..memory.memory_reading import MemoryReading
from ..units import to_gib


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.3f} GiB"


def ros_headroom_bytes(reading: MemoryReading) -> int:
    """Return what ROS can still grow into: host available minus its unused reserve."""
    unused_reserve = max(0, reading.ros_reserve_bytes - reading.ros_live_bytes)
    return reading.host_available_bytes - unused_reserve


@dataclass(frozen=True)
class Breach:
    """A reading on which the robot needs memory back, with the numbers that say so."""

    stamp_s: float
    working_set_bytes: int
    model_budget_bytes: int
    pressure_percent: float
    ros_headroom_bytes: int
    ros_live_bytes: int
    ros_reserve_bytes: int
    why: str

    def describe(self) -> str:
        """Say why, with the numbers."""
        return (f"{self.why}: model memory {_gib(self.working_set_bytes)} is "
                f"{self.pressure_percent:.0f} % of the budget {_gib(self.model_budget_bytes)}, "
                f"ROS headroom {_gib(self.ros_headroom_bytes)} (ROS live "
                f"{_gib(self.ros_live_bytes)}, reserve {_gib(self.ros_reserve_bytes)})")


def find_breach(reading: MemoryReading, *, error_percent: float) -> Optional[Breach]:
    """Return the breach on this reading, or None while the robot has its memory."""
    headroom = ros_headroom_bytes(reading)
    pressure = reading.pressure_percent
    whys = []
    if reading.host_total_bytes > 0 and headroom < 0:
        whys.append("the live ROS headroom fell under the ROS reserve")
    if pressure >= error_percent:  # no budget at all reads as 100 %
        whys.append(f"model memory crossed {error_percent:.0f} % of the model budget")
    if not whys:
        return None
    return Breach(stamp_s=reading.stamp_s,
                  working_set_bytes=reading.memory_in_use_bytes,
                  model_budget_bytes=reading.model_budget_bytes, pressure_percent=pressure,
                  ros_headroom_bytes=headroom, ros_live_bytes=reading.ros_live_bytes,
                  ros_reserve_bytes=reading.ros_reserve_bytes, why=" and ".join(whys))


def model_memory_bytes(reading: MemoryReading, empty_working_set_bytes: int) -> int:
    """Memory the container holds beyond its empty working set (the models, loaded or loading)."""
    return max(0, reading.memory_in_use_bytes - empty_working_set_bytes)


def released(reading: MemoryReading, *, held_at_breach_bytes: int, empty_working_set_bytes: int,
             release_fraction: float) -> bool:
    """Tell whether release_fraction of what the models held at the breach came back."""
    held_now = model_memory_bytes(reading, empty_working_set_bytes)
    return held_now <= (1.0 - release_fraction) * max(0, held_at_breach_bytes)


def keeps_rising(held_after_unload_bytes: int, held_now_bytes: int, *,
                 budget_bytes: int, rise_fraction: float) -> bool:
    """Tell whether the models' memory grew after the unload (a load Ollama goes on with)."""
    return held_now_bytes - held_after_unload_bytes > rise_fraction * max(1, budget_bytes)


def go_on_reason(reading: MemoryReading) -> str:
    """Say why the run goes on with its next model after a preemption, with the numbers."""
    return (f"the robot has its memory back: go on with the next model (working set "
            f"{_gib(reading.container.working_set_bytes)}, budget "
            f"{_gib(reading.model_budget_bytes)})")
