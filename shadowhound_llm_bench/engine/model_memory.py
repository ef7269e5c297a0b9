"""Model memory from the chosen sources, measured beside every container and host sample."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Tuple

from ..adapters.memory_sources import (DEFAULT_GPU_PROCESS_PATTERN, GpuMemoryUnavailable,
                                       MemorySourceReader, cgroup_of)
from ..core.memory.memory_calibration import ChosenSources, model_memory_bytes
from ..core.memory.memory_reading import ContainerSample
from ..core.memory.memory_sources import (GPU_PROCESSES, HostMeminfo, MemorySourceSettings,
                                          SourceSnapshot, counted_in_available_bytes,
                                          source_values)


class ModelMemoryGauge:
    """
    Sums the chosen sources into the memory Ollama's models hold (None when one is unreadable).

    Per-process GPU memory costs a process start with nvidia-smi, so it is read at most every
    gpu_period_s and reused in between.
    """

    def __init__(self, *, reader: MemorySourceReader,
                 chosen: Optional[ChosenSources] = None,
                 gpu_name_pattern: str = DEFAULT_GPU_PROCESS_PATTERN,
                 gpu_period_s: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.chosen = chosen or ChosenSources()
        self.gpu_name_pattern = gpu_name_pattern
        self.gpu_period_s = gpu_period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._gpu: Optional[Tuple[float, tuple]] = None
        self._refreshing = False
        self.last_error = ""

    def set_chosen(self, chosen: ChosenSources) -> None:
        """Use other sources from now on (after calibration)."""
        with self._lock:
            self.chosen = chosen
            self._gpu = None

    def chosen_label(self) -> str:
        """Return the chosen sources as one word (keys measurements made through them)."""
        return self.chosen.label

    def invalidate(self) -> None:
        """Read GPU memory anew at the next sample (a measurement must not use an old one)."""
        with self._lock:
            self._gpu = None

    def _gpu_processes(self) -> Optional[tuple]:
        now = self._clock()
        with self._lock:
            cached = self._gpu
            refresh = cached is not None and now - cached[0] >= self.gpu_period_s \
                and not self._refreshing
            self._refreshing = self._refreshing or refresh
        if cached is None:  # first, or invalidated for a measurement: wait for a fresh one
            return self._read_gpu(now)
        if refresh:  # a sample never waits on nvidia-smi, slowest when memory is short
            threading.Thread(target=self._read_gpu, args=(now,), name="gpu-processes",
                             daemon=True).start()
        return cached[1]

    def _read_gpu(self, now: float) -> Optional[tuple]:
        try:
            processes = self.reader.gpu_processes()
        except GpuMemoryUnavailable as exc:
            self.last_error = str(exc)
            processes = None
        with self._lock:
            self._refreshing = False
            if processes is not None:
                self._gpu = (now, processes)
        return processes

    def measure(self, container: ContainerSample, meminfo: Optional[HostMeminfo],
                ros_live_bytes: int) -> Tuple[Optional[int], str, int]:
        """
        Return (model memory bytes or None, source label, bytes MemAvailable counts as well).

        The last number is the page cache inside model memory that the host also reports as
        available: the budget takes it out once.
        """
        chosen = self.chosen
        gpu = self._gpu_processes() if chosen.needs(GPU_PROCESSES) else None
        snapshot = SourceSnapshot(stamp_s=container.stamp_s, cgroup=cgroup_of(container),
                                  meminfo=meminfo, gpu_processes=gpu,
                                  ros_live_bytes=ros_live_bytes)
        values = source_values(snapshot, gpu_name_pattern=self.gpu_name_pattern,
                               other_host_bytes=chosen.other_host_bytes)
        if "cgroup_working_set" not in values:
            values["cgroup_working_set"] = container.working_set_bytes
        overlap = counted_in_available_bytes(snapshot, chosen.sources)
        return model_memory_bytes(values, chosen.sources), chosen.label, overlap


def open_model_memory_gauge(settings: MemorySourceSettings) -> ModelMemoryGauge:
    """Open a gauge over the configured sources (a given list as is; auto: calibration)."""
    reader = MemorySourceReader(meminfo_path=settings.meminfo_path,
                                nvidia_smi_command=settings.nvidia_smi_command)
    chosen = (ChosenSources(sources=settings.sources, origin="configured")
              if settings.sources else ChosenSources())
    return ModelMemoryGauge(reader=reader, chosen=chosen)
