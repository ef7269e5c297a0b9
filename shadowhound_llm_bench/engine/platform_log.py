"""The run log's platform records: the machine at the start and end of a run, and the samples."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from ..core.platform.platform_record import machine_warnings
from .platform_monitor import PlatformMonitor

Write = Callable[..., None]


class PlatformLog:
    """Writes `machine` and `platform` records for one run through the runner's writer."""

    def __init__(self, monitor: PlatformMonitor) -> None:
        self.monitor = monitor
        self._since_s = time.time()
        self.warnings: list = []

    def write_machine(self, write: Write, *, when: str, ollama_version: str = "",
                      bandwidth_override_bytes_per_s: Optional[float] = None,
                      container: Any = None) -> None:
        """Probe the machine and write it; at the start also its warnings, then start sampling."""
        record = self.monitor.machine(
            bandwidth_override_bytes_per_s=bandwidth_override_bytes_per_s,
            ollama_version=ollama_version, container=container)
        warnings = machine_warnings(record) if when == "start" else []
        if when == "start":
            self.warnings = warnings
            self._since_s = time.time()
            self.monitor.start()
            self.monitor.sample_now()
        write("machine", when=when, machine=record.to_dict(), warnings=warnings,
              sensor_source=self.monitor.source)

    def flush(self, write: Write) -> None:
        """Write the samples taken since the last one written (nothing without a sensor)."""
        samples = self.monitor.samples_since(self._since_s)
        if not samples:
            return
        self._since_s = samples[-1].t_s + 1e-9
        write("platform", samples=[_compact(s.to_dict()) for s in samples])


def _compact(sample: dict) -> dict:
    """Round a sample for the log (microsecond times, milliwatts, centidegrees)."""
    out = dict(sample)
    out["t_s"] = round(float(out["t_s"]), 6)
    for key, digits in (("power_w", 3), ("temp_c", 2)):
        if isinstance(out.get(key), float):
            out[key] = round(out[key], digits)
    return out
