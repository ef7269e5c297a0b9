"""Host memory of the real machine: its /proc/meminfo, read into core/memory's HostMeminfo."""

from __future__ import annotations

from typing import Protocol

from ..core.memory.memory_sources import HostMeminfo, host_meminfo, parse_meminfo


class HostMemory(Protocol):
    """Source of host memory readings."""

    def sample(self, *, ros_live_bytes: int,
               container_working_set_bytes: int) -> HostMeminfo:
        """Host memory now (a real host ignores the arguments; a simulated one uses them)."""


class HostMemoryError(Exception):
    """/proc/meminfo could not be read or parsed."""


class ProcMeminfoHost:
    """The real machine: MemTotal and MemAvailable (MemFree, Cached, NvMapMemUsed if present)."""

    def __init__(self, *, path: str = "/proc/meminfo") -> None:
        self.path = path

    def sample(self, *, ros_live_bytes: int = 0,
               container_working_set_bytes: int = 0) -> HostMeminfo:
        """Read /proc/meminfo now."""
        try:
            with open(self.path, "r", encoding="ascii") as handle:
                return host_meminfo(parse_meminfo(handle.read()))
        except (OSError, ValueError) as exc:  # MemorySourceError is a ValueError
            raise HostMemoryError(f"cannot read {self.path}: {exc}") from exc
