"""
GPU memory of ROS processes, where the machine reports it per process (nvidia-smi, NVML).

On unified memory a ROS node's CUDA allocations (a perception model, a GPU costmap) are held by
the driver, not by the process's pages: its RSS/PSS misses them. The reserve must count them.
nvidia-smi costs a process start, so the reading is refreshed at most every `period_s`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional

from ..adapters.memory_sources import GpuMemoryUnavailable, open_gpu_reader


class RosGpuMemory:
    """Per-process GPU bytes by pid, cached for period_s; empty when nothing can report them."""

    def __init__(self, reader: Any, *, period_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reader = reader
        self._period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: Optional[float] = None
        self._by_pid: Dict[int, int] = {}
        self.last_error = ""

    @classmethod
    def open(cls, nvidia_smi_command: str, *, period_s: float = 2.0) -> Optional['RosGpuMemory']:
        """Open nvidia-smi (or NVML); None where the machine cannot report GPU memory."""
        reader, _ = open_gpu_reader(nvidia_smi_command=nvidia_smi_command)
        return cls(reader, period_s=period_s) if reader is not None else None

    def by_pid(self) -> Dict[int, int]:
        """Return GPU bytes per process, read anew when the last reading is older than period_s."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._period_s:
                self._read_at = now
                try:
                    self._by_pid = {int(p.pid): int(p.used_bytes)
                                    for p in self._reader.processes()}
                    self.last_error = ""
                except GpuMemoryUnavailable as exc:
                    self.last_error = str(exc)  # the last good reading stands
            return dict(self._by_pid)

    def bytes_of(self, pids: Iterable[int]) -> int:
        """Return the GPU bytes held by these processes."""
        by_pid = self.by_pid()
        return sum(by_pid.get(int(pid), 0) for pid in set(pids))
