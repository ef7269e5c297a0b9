"""Live ROS 2 / Nav2 memory and the reserve held back for it, one sample per call."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Protocol, Tuple

from ..adapters.ros_processes import RosProcessScan, make_ros_process_scanner
from ..core.memory.ros_reserve import (
    PeakWindow, RosProcessMemory, RosReserveSettings, ros_reserve_bytes, top_consumers)


class RosProcessSource(Protocol):
    """Anything that lists ROS processes with their memory (the psutil scanner in production)."""

    def scan(self) -> RosProcessScan:
        """One pass over the process table."""


@dataclass(frozen=True)
class RosHeadroomReading:
    """ROS memory now, the reserve derived from its recent peak, and who holds it."""

    stamp_s: float  # wall clock (the clock given to RosHeadroom), taken after the scan
    live_bytes: int  # PSS (RSS where PSS is unreadable) of every ROS process now
    reserve_bytes: int  # max(floor, peak live over the window × growth) + margin
    processes: Tuple[RosProcessMemory, ...]
    top: List[Tuple[str, int]]  # (node or process group, bytes), largest first
    scan_s: float  # how long the process scan took
    peak_live_bytes: int = 0  # the peak over the window the reserve was derived from
    gpu_bytes: int = 0  # GPU memory of the ROS processes (in live_bytes), where reported


class RosHeadroom:
    """
    Samples ROS process memory and keeps the sliding-window peak behind the reserve.

    Thread-safe: sample() may run on a monitor thread while latest() is read elsewhere.
    Each sample() is one scan; call it once per sampling period.
    """

    def __init__(
        self,
        *,
        scanner: RosProcessSource,
        settings: RosReserveSettings,
        clock: Callable[[], float] = time.time,
        gpu: Optional[Any] = None,
    ) -> None:
        self._scanner = scanner
        self._gpu = gpu  # a RosGpuMemory: per-process GPU bytes counted as ROS memory
        self._settings = settings
        self._clock = clock
        self._window = PeakWindow(settings.window_s)
        self._lock = threading.Lock()
        self._latest: Optional[RosHeadroomReading] = None

    @classmethod
    def from_settings(
        cls,
        settings: RosReserveSettings,
        *,
        exclude_pids: Iterable[int] = (),
        exclude_container_ids: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        gpu: Optional[Any] = None,
    ) -> 'RosHeadroom':
        """Headroom over the psutil scanner built from `settings`."""
        scanner = make_ros_process_scanner(
            settings, exclude_pids=exclude_pids, exclude_container_ids=exclude_container_ids)
        return cls(scanner=scanner, settings=settings, clock=clock, gpu=gpu)

    @property
    def settings(self) -> RosReserveSettings:
        """Return the settings the reserve is computed with."""
        return self._settings

    @property
    def scanner(self) -> RosProcessSource:
        """Return the process source (its set_exclusions() follows a new Ollama container)."""
        return self._scanner

    def sample(self) -> RosHeadroomReading:
        """
        Scan the processes now and return live memory, reserve and top consumers.

        Raises RosProcessScanError only when the process table itself cannot be read.
        """
        with self._lock:
            scan = self._scanner.scan()
            gpu_bytes = self._gpu.bytes_of(p.pid for p in scan.processes) if self._gpu else 0
            stamp_s = self._clock()
            live_bytes = scan.live_bytes + gpu_bytes
            peak_bytes = self._window.add(stamp_s, live_bytes)
            reading = RosHeadroomReading(
                stamp_s=stamp_s,
                live_bytes=live_bytes,
                reserve_bytes=ros_reserve_bytes(peak_bytes, self._settings),
                processes=scan.processes,
                top=top_consumers(scan.processes, self._settings.top_count),
                scan_s=scan.scan_s,
                peak_live_bytes=peak_bytes,
                gpu_bytes=gpu_bytes,
            )
            self._latest = reading
            return reading

    def latest(self) -> Optional[RosHeadroomReading]:
        """Return the latest reading without scanning or waiting; None before any sample()."""
        return self._latest  # a reference swap is atomic; no lock so a running scan never blocks
