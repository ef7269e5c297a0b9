"""
Background platform sampler: power, temperature, clocks and power mode, with a timeline.

One sample per period on its own thread (jtop or sysfs, adapters/platform_sensors); the power
mode (`nvpmodel -q`, a process) is re-read on the same thread at a slower period so a sample
never waits for it. Without any sensor the monitor still probes the machine record and its
samples are absent: reports say "not measured", never zero.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, List, Optional, Sequence

from ..adapters.platform_probe import probe_machine, read_power_mode
from ..adapters.platform_sensors import open_sensors
from ..core.platform.energy_accounting import PowerSample
from ..core.platform.platform_record import (
    BANDWIDTH_TABLE_NAME, BandwidthEntry, BandwidthTableError, MachineRecord,
    load_bandwidth_table, power_mode_is_max,
)

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlatformSettings:
    """Where and how often the platform is read."""

    sysfs_root: str = "/"
    sample_hz: float = 20.0
    power_mode_period_s: float = 10.0
    hot_c: float = 85.0  # a clock below its maximum at or above this counts as throttled
    use_jtop: bool = True
    gpu_busy_percent: float = 20.0
    # Samples kept in memory; a run writes them to its log at every test and model end.
    keep_s: float = 1800.0  # about 7 MB at 20 Hz


def bandwidth_table_path() -> Optional[Path]:
    """Return config/memory_bandwidth.yaml from the source tree or the installed share."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "config" / BANDWIDTH_TABLE_NAME]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory("shadowhound_llm_bench"))
                          / "config" / BANDWIDTH_TABLE_NAME)
    except Exception:  # no ament index: source tree only
        pass
    for path in candidates:
        if path.is_file():
            return path
    return None


def default_bandwidth_table() -> List[BandwidthEntry]:
    """Return the shipped bandwidth table; empty (with a log line) when it cannot be read."""
    path = bandwidth_table_path()
    if path is None:
        return []
    try:
        return load_bandwidth_table(path)
    except BandwidthTableError as exc:
        _LOG.warning("memory bandwidth table not used: %s", exc)
        return []


class PlatformMonitor:
    """Samples the platform on a thread; latest() and samples_since() never block on I/O."""

    def __init__(self, settings: PlatformSettings = PlatformSettings(), *,
                 bandwidth_table: Optional[Sequence[BandwidthEntry]] = None) -> None:
        if settings.sample_hz <= 0:
            raise ValueError("platform sample_hz must be positive")
        self.settings = settings
        self.bandwidth_table = list(default_bandwidth_table() if bandwidth_table is None
                                    else bandwidth_table)
        self.sensors = open_sensors(settings.sysfs_root, hot_c=settings.hot_c,
                                    use_jtop=settings.use_jtop,
                                    tegrastats_interval_ms=int(1000.0 / settings.sample_hz))
        self._lock = threading.Lock()
        self._samples: Deque[PowerSample] = collections.deque(
            maxlen=max(100, int(settings.keep_s * settings.sample_hz)))
        self._latest: Optional[PowerSample] = None
        self._power_mode = ""
        self._power_mode_id: Optional[int] = None
        self._power_mode_read_s = 0.0
        self._energy_j = 0.0
        self._throttled_s = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.sample_errors = 0
        self.last_machine: Optional[MachineRecord] = None

    @property
    def source(self) -> str:
        """Return jtop, sysfs, tegrastats or none."""
        return getattr(self.sensors, "name", "none") if self.sensors is not None else "none"

    def machine(self, *, bandwidth_override_bytes_per_s: Optional[float] = None,
                ollama_version: str = "", container: Any = None) -> MachineRecord:
        """Probe the machine record now (runs tools; call outside the sampling hot path)."""
        record = probe_machine(root=self.settings.sysfs_root, sensors=self.sensors,
                               bandwidth_table=self.bandwidth_table,
                               bandwidth_override_bytes_per_s=bandwidth_override_bytes_per_s,
                               gpu_busy_percent=self.settings.gpu_busy_percent)
        record.ollama_version = ollama_version
        image = getattr(container, "image_ref", None)
        if callable(image):
            try:
                record.container_image, record.container_digest = image()
            except Exception as exc:  # the engine went away: the record says why
                record.notes.append(f"container image not read: {exc}")
        self.last_machine = record
        if record.power_mode:
            with self._lock:
                self._power_mode, self._power_mode_id = record.power_mode, record.power_mode_id
                self._power_mode_read_s = time.monotonic()
        return record

    # ------------------------------------------------------------------ sampling
    def start(self) -> "PlatformMonitor":
        """Start sampling (no thread when there is no sensor)."""
        if self.sensors is None or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._loop, name="platform-sampler",
                                        daemon=True)
        self._thread.start()
        return self

    def sample_now(self) -> Optional[PowerSample]:
        """Take one sample in the calling thread (None without a sensor)."""
        if self.sensors is None:
            return None
        sample = self.sensors.read(self._power_mode)
        with self._lock:
            previous = self._latest
            if previous is not None and previous.power_w is not None:
                gap = max(0.0, sample.t_s - previous.t_s)
                if gap < 5.0 / self.settings.sample_hz:
                    self._energy_j += previous.power_w * gap
                    self._throttled_s += gap if previous.throttled else 0.0
            self._samples.append(sample)
            self._latest = sample
        return sample

    def _loop(self) -> None:
        period = 1.0 / self.settings.sample_hz
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_now()
            except Exception as exc:  # a vanished file must not kill the sampler
                self.sample_errors += 1
                if self.sample_errors == 1:
                    _LOG.warning("platform sample failed: %s", exc)
            now = time.monotonic()
            if now - self._power_mode_read_s >= self.settings.power_mode_period_s:
                self._power_mode_read_s = now
                name, mode_id, _note = read_power_mode(self.settings.sysfs_root)
                if name:
                    self._power_mode, self._power_mode_id = name, mode_id
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > 10 * period:
                next_at = time.monotonic()  # fell far behind (suspend): do not burst

    def latest(self) -> Optional[PowerSample]:
        with self._lock:
            return self._latest

    def samples_since(self, t_s: float) -> List[PowerSample]:
        """Return the samples taken at or after wall-clock t_s, oldest first."""
        with self._lock:
            return [s for s in self._samples if s.t_s >= t_s]

    def totals(self) -> tuple:
        """(energy J, throttled s) since the monitor started."""
        with self._lock:
            return self._energy_j, self._throttled_s

    @property
    def power_mode(self) -> str:
        return self._power_mode

    def current_machine(self) -> Optional[MachineRecord]:
        """Return the last machine record with the power mode as last read (every few s)."""
        record = self.last_machine
        if record is None or not self._power_mode or self._power_mode == record.power_mode:
            return record
        return dataclasses.replace(record, power_mode=self._power_mode,
                                   power_mode_id=self._power_mode_id,
                                   power_mode_is_max=power_mode_is_max(self._power_mode))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.sensors is not None:
            self.sensors.close()
