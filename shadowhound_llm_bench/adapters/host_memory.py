"""Host memory: MemTotal / MemAvailable from /proc/meminfo, or a simulated machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Protocol

from ..core.decider.memory_budget import simulated_host_available_bytes
from ..core.memory.memory_sources import parse_meminfo


@dataclass(frozen=True)
class HostMemorySample:
    """Total and available memory of the machine Ollama and ROS share."""

    total_bytes: int
    available_bytes: int
    free_bytes: int = -1  # MemFree; -1 = not read (a simulated machine)
    cached_bytes: int = -1  # Cached; -1 = not read
    nvmap_bytes: Optional[int] = None  # NvMapMemUsed (older Jetsons), None where absent


class HostMemory(Protocol):
    """Source of host memory readings."""

    def sample(self, *, ros_live_bytes: int,
               container_working_set_bytes: int) -> HostMemorySample:
        """Host memory now (a real host ignores the arguments; a simulated one uses them)."""


class HostMemoryError(Exception):
    """/proc/meminfo could not be read or parsed."""


def read_meminfo(path: str = "/proc/meminfo") -> Dict[str, int]:
    """Read the fields of /proc/meminfo in bytes (core/memory/memory_sources.py parse_meminfo)."""
    try:
        with open(path, "r", encoding="ascii") as handle:
            return parse_meminfo(handle.read())
    except (OSError, ValueError) as exc:  # MemorySourceError is a ValueError
        raise HostMemoryError(f"cannot read {path}: {exc}") from exc


class ProcMeminfoHost:
    """The real machine: MemTotal and MemAvailable."""

    def __init__(self, *, path: str = "/proc/meminfo") -> None:
        self.path = path

    def sample(self, *, ros_live_bytes: int = 0,
               container_working_set_bytes: int = 0) -> HostMemorySample:
        """Read /proc/meminfo now."""
        fields = read_meminfo(self.path)
        if "MemTotal" not in fields or "MemAvailable" not in fields:
            raise HostMemoryError(f"{self.path} lacks MemTotal or MemAvailable")
        return HostMemorySample(fields["MemTotal"], fields["MemAvailable"],
                                free_bytes=fields.get("MemFree", -1),
                                cached_bytes=fields.get("Cached", -1),
                                nvmap_bytes=fields.get("NvMapMemUsed"))


class SimulatedHost:
    """A machine of a configured size (the simulator's scenarios): available memory is derived."""

    def __init__(self, *, total_bytes: int, system_reserve_bytes: int) -> None:
        if total_bytes <= 0 or not 0 <= system_reserve_bytes < total_bytes:
            raise ValueError("need total_bytes > system_reserve_bytes >= 0")
        self.total_bytes = total_bytes
        self.system_reserve_bytes = system_reserve_bytes

    def sample(self, *, ros_live_bytes: int,
               container_working_set_bytes: int) -> HostMemorySample:
        """Total minus system reserve, live ROS memory and the container's working set."""
        available = simulated_host_available_bytes(
            host_total_bytes=self.total_bytes, system_reserve_bytes=self.system_reserve_bytes,
            ros_live_bytes=ros_live_bytes,
            container_working_set_bytes=container_working_set_bytes)
        return HostMemorySample(self.total_bytes, available)
