"""One reading of container, host and ROS memory: the single shape every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Optional


class ContainerState(IntEnum):
    """Numbers match ContainerMemory.msg's STATE_* constants."""

    UNKNOWN = 0
    RUNNING = 1
    RESTARTING = 2
    STOPPED = 3
    MISSING = 4


@dataclass(frozen=True)
class ContainerSample:
    """What the container backend measured at one instant."""

    stamp_s: float  # wall clock, time.time()
    working_set_bytes: int  # usage minus inactive file cache, as `docker stats`
    usage_bytes: int  # raw cgroup usage, cache included
    limit_bytes: int  # 0 = no limit
    state: ContainerState = ContainerState.RUNNING
    anon_bytes: int = -1  # anonymous pages charged to the container; -1 = not split
    file_bytes: int = -1  # file (page cache) pages charged to it; -1 = not split
    cgroup_version: int = 0  # 1 or 2 when read from a cgroup, 0 otherwise
    mapped_file_bytes: int = -1  # file pages mapped by its processes (mmap'd weights)


@dataclass(frozen=True)
class MemoryReading:
    """Container, host and ROS memory with the budget the policy derived from them."""

    stamp_s: float
    container: ContainerSample
    host_total_bytes: int
    host_available_bytes: int
    ros_live_bytes: int
    ros_reserve_bytes: int
    model_budget_bytes: int  # what the container may hold in total right now
    loaded_models: int = 0
    # Memory the models hold, from the sources calibration chose (None: the working set).
    model_memory_bytes: Optional[int] = None
    source: str = "cgroup_working_set"  # the chosen sources, joined by "+"
    host_free_bytes: int = -1  # MemFree; -1 = not read
    host_cached_bytes: int = -1  # Cached; -1 = not read
    # Page cache inside model memory that MemAvailable counts too (taken out of the budget once).
    cache_in_model_memory_bytes: int = 0

    @property
    def memory_in_use_bytes(self) -> int:
        """Return what Ollama holds by the chosen sources (default: the working set)."""
        if self.model_memory_bytes is not None:
            return self.model_memory_bytes
        return self.container.working_set_bytes

    @property
    def budget_headroom_bytes(self) -> int:
        """Budget left for a new model; negative when the container is over budget."""
        return self.model_budget_bytes - self.memory_in_use_bytes

    @property
    def pressure_percent(self) -> float:
        """Memory in use as a percentage of the model budget."""
        if self.model_budget_bytes <= 0:
            return 100.0
        return 100.0 * self.memory_in_use_bytes / self.model_budget_bytes
