"""Background memory sampler: container + host + ROS reserve -> MemoryReading, with a timeline."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from ..adapters.container_backend import ContainerBackend
from ..adapters.host_memory import HostMemory, HostMemoryError
from ..core.decider.memory_budget import BudgetInputs, model_budget_bytes
from ..core.memory.memory_reading import ContainerSample, ContainerState, MemoryReading
from ..core.memory.memory_sources import HostMeminfo
from .backend_record import measures_memory

_LOG = logging.getLogger(__name__)
# What an API-only run reads: the sizes /api/ps reports, no cgroup or host source.
API_ONLY_SOURCE = "ollama_ps_sizes"

ReadingListener = Callable[[MemoryReading], None]


def _headroom_sampler(source: Any) -> Callable[[], Tuple[int, int]]:
    """(live, reserve) bytes from RosHeadroom-like objects (sample()) or plain callables."""
    sample = getattr(source, "sample", source)

    def read() -> Tuple[int, int]:
        reading = sample()
        return int(reading.live_bytes), int(reading.reserve_bytes)
    return read


class MemoryMonitor:
    """
    Samples at a fixed period on its own thread; latest() never blocks on I/O.

    Without a headroom source the ROS reserve is the configured fixed reserve (and live ROS memory
    counts as zero). The ROS headroom is sampled on the thread only; sample_now() reuses the last
    one, so the guard gets a fresh container reading without a process scan.
    """

    def __init__(self, *, backend: ContainerBackend, host: HostMemory,
                 safety_buffer_bytes: int, period_s: float = 0.5,
                 headroom: Optional[Any] = None, fixed_ros_reserve_bytes: int = 0,
                 max_timeline: int = 200_000,
                 clock: Callable[[], float] = time.time,
                 model_memory: Optional[Any] = None,
                 headroom_period_s: Optional[float] = None) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.backend = backend
        self.host = host
        self.safety_buffer_bytes = safety_buffer_bytes
        self.period_s = period_s
        self.fixed_ros_reserve_bytes = fixed_ros_reserve_bytes
        self.max_timeline = max_timeline
        self._headroom = _headroom_sampler(headroom) if headroom is not None else None
        # A process-table scan costs far more than a container reading and ROS memory moves
        # slowly: the scan may run less often than the container is sampled.
        self.headroom_period_s = max(period_s, headroom_period_s or period_s)
        self._headroom_due = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._timeline: List[MemoryReading] = []
        self._latest: Optional[MemoryReading] = None
        self._ros: Tuple[int, int] = (0, fixed_ros_reserve_bytes)
        self._loaded_models = 0
        self._listeners: List[ReadingListener] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.sample_errors = 0
        # ModelMemoryGauge: model memory from the chosen sources (None: the working set).
        self.model_memory = model_memory

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MemoryMonitor":
        """Take a first reading now, then sample on a daemon thread."""
        if self._thread is not None:
            return self
        self._sample_headroom()
        self.sample_now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="memory-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the sampling thread (within one period)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 3 * self.period_s))
            self._thread = None

    def add_listener(self, listener: ReadingListener) -> None:
        """Call `listener` with every new reading (on the sampling thread; keep it quick)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: ReadingListener) -> None:
        """Stop calling `listener` (a run's watchers leave the node's long-lived monitor)."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def set_loaded_models(self, count: int) -> None:
        """How many models Ollama holds (the guard knows from /api/ps)."""
        self._loaded_models = max(0, int(count))

    # ------------------------------------------------------------------ sampling
    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                now = time.monotonic()
                if now >= self._headroom_due:
                    self._headroom_due = now + self.headroom_period_s - self.period_s / 2
                    self._sample_headroom()
                self.sample_now()
            except Exception as exc:  # the sampler must outlive any one bad reading
                self.sample_errors += 1
                _LOG.warning("memory sample failed: %s", exc)

    def _sample_headroom(self) -> None:
        if self._headroom is None:
            return
        try:
            ros = self._headroom()
        except Exception as exc:  # keep the previous reserve rather than drop to zero
            self.sample_errors += 1
            _LOG.warning("ROS headroom sample failed, keeping the last reserve: %s", exc)
            return
        with self._lock:
            self._ros = ros

    def sample_now(self) -> MemoryReading:
        """Take a fresh container and host reading (last ROS reserve); it joins the timeline."""
        try:
            container = self.backend.sample()
        except Exception as exc:
            self.sample_errors += 1
            _LOG.warning("container sample failed: %s", exc)
            container = ContainerSample(self._clock(), 0, 0, 0, ContainerState.UNKNOWN)
        with self._lock:
            ros_live, ros_reserve = self._ros
        try:
            host = self.host.sample(ros_live_bytes=ros_live,
                                    container_working_set_bytes=container.working_set_bytes)
            host_total, host_available = host.total_bytes, host.available_bytes
        except HostMemoryError as exc:
            self.sample_errors += 1
            _LOG.warning("host memory sample failed: %s", exc)
            host_total, host_available, host = 0, 0, None
        model_memory, source, overlap = self._model_memory(container, host, ros_live)
        if not measures_memory(self.backend):  # API only: no source measured, /api/ps sizes
            model_memory, source, overlap = None, API_ONLY_SOURCE, 0
        in_use = model_memory if model_memory is not None else container.working_set_bytes
        budget = model_budget_bytes(BudgetInputs(
            host_total_bytes=host_total,
            host_available_bytes=max(0, host_available - overlap),
            container_working_set_bytes=in_use,
            container_limit_bytes=container.limit_bytes, ros_live_bytes=ros_live,
            ros_reserve_bytes=ros_reserve, safety_buffer_bytes=self.safety_buffer_bytes))
        reading = MemoryReading(
            stamp_s=self._clock(), container=container, host_total_bytes=host_total,
            host_available_bytes=host_available, ros_live_bytes=ros_live,
            ros_reserve_bytes=ros_reserve, model_budget_bytes=budget,
            loaded_models=self._loaded_models, model_memory_bytes=model_memory, source=source,
            host_free_bytes=getattr(host, "free_bytes", -1),
            host_cached_bytes=getattr(host, "cached_bytes", -1),
            cache_in_model_memory_bytes=overlap)
        with self._lock:
            self._latest = reading
            self._timeline.append(reading)
            if len(self._timeline) > self.max_timeline:
                del self._timeline[: len(self._timeline) - self.max_timeline]
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(reading)
            except Exception as exc:  # a broken listener must not stop sampling
                _LOG.warning("memory listener failed: %s", exc)
        return reading

    def sample_after(self, stamp_s: float, *, deadline_s: float) -> MemoryReading:
        """
        Return a reading whose container sample was taken at or after stamp_s (wall clock).

        Backends that read through a slow API hand out their last reading in between; this
        waits for a newer one up to deadline_s and then returns the newest it got.
        """
        end = time.monotonic() + deadline_s
        reading = self.sample_now()
        while reading.container.stamp_s < stamp_s and time.monotonic() < end:
            time.sleep(min(0.05, self.period_s))
            reading = self.sample_now()
        return reading

    def _model_memory(self, container: ContainerSample, host: Any,
                      ros_live: int) -> Tuple[Optional[int], str, int]:
        """Model memory by the chosen sources and its page cache also counted as available."""
        if self.model_memory is None:
            return None, "cgroup_working_set", 0
        # The machine's own meminfo (MemFree read); a simulated host's derived total is not one.
        meminfo: Optional[HostMeminfo] = (
            host if isinstance(host, HostMeminfo) and host.free_bytes >= 0 else None)
        try:
            return self.model_memory.measure(container, meminfo, ros_live)
        except Exception as exc:  # a source that breaks falls back to the working set
            self.sample_errors += 1
            _LOG.warning("model memory sample failed: %s", exc)
            return None, "cgroup_working_set", 0

    # ------------------------------------------------------------------ reading
    def latest(self) -> Optional[MemoryReading]:
        """Return the most recent reading (None before start); never blocks on I/O."""
        with self._lock:
            return self._latest

    def timeline(self) -> List[MemoryReading]:
        """Every reading so far, oldest first."""
        with self._lock:
            return list(self._timeline)

    def peak_working_set_since(self, stamp_s: float) -> int:
        """Highest container working set of the readings taken at or after stamp_s."""
        with self._lock:
            values = [r.memory_in_use_bytes for r in reversed(self._timeline)
                      if r.stamp_s >= stamp_s]
        return max(values, default=0)
