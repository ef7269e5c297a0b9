"""Whether a run can test anything at all, and if not, which numbers and which option say why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..memory.memory_reading import MemoryReading
from ..units import to_gib


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.2f} GiB"


@dataclass(frozen=True)
class PlannedFit:
    """One model of a plan: its predicted footprint and the plan's skip reason (empty: it runs)."""

    model: str
    footprint_bytes: int
    skip_reason: str


def budget_terms(reading: MemoryReading, safety_buffer_bytes: int) -> str:
    """Say what the budget is made of, naming the term that limits it."""
    unused_reserve = max(0, reading.ros_reserve_bytes - reading.ros_live_bytes)
    host_side = (f"host available {_gib(reading.host_available_bytes)} + Ollama's "
                 f"{_gib(reading.memory_in_use_bytes)} - unused ROS reserve "
                 f"{_gib(unused_reserve)} (reserve {_gib(reading.ros_reserve_bytes)}, ROS live "
                 f"{_gib(reading.ros_live_bytes)}) - safety buffer {_gib(safety_buffer_bytes)}")
    limit = reading.container.limit_bytes
    host_budget = (reading.host_available_bytes + reading.memory_in_use_bytes - unused_reserve
                   - safety_buffer_bytes)
    if limit > 0 and limit - safety_buffer_bytes <= host_budget:
        return (f"the container's memory limit {_gib(limit)} - safety buffer "
                f"{_gib(safety_buffer_bytes)} (the host side would allow "
                f"{_gib(max(0, host_budget))})")
    return host_side


def nothing_fits(plan: Sequence[PlannedFit], budget_bytes: int) -> Optional[Tuple[str, int]]:
    """Return the smallest model and its footprint when no model of the plan can run, else None."""
    if not plan or any(not p.skip_reason for p in plan):
        return None
    sized = [p for p in plan if p.footprint_bytes > 0]
    if not sized:
        return None
    smallest = min(sized, key=lambda p: p.footprint_bytes)
    if smallest.footprint_bytes <= budget_bytes:
        return None  # skipped for another reason (not pulled, refused): the run says why
    return smallest.model, smallest.footprint_bytes


def nothing_fits_message(model: str, footprint_bytes: int, reading: MemoryReading,
                         safety_buffer_bytes: int, fixes: str) -> str:
    """One message: the budget, what it is made of, the smallest model's need, and the fix."""
    return (f"nothing can be tested: the model budget is {_gib(reading.model_budget_bytes)} = "
            f"{budget_terms(reading, safety_buffer_bytes)}, and the smallest model, {model}, "
            f"needs {_gib(footprint_bytes)}. Nothing was loaded. Fix: {fixes}")
