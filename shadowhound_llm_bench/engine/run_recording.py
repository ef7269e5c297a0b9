"""
The run log's writer: each record with the run's session, memory and platform records as they come.

Memory records carry only the guard's readings and decisions that are new since the last one, so
the log holds each once; models of a batch end on their own threads, hence the lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Dict, Optional

from ..core.runs.run_records import record, to_jsonable
from ..reports.jsonl_log import JsonlLog
from .memory_guard_api import MemoryGuard
from .platform_log import PlatformLog


class RunRecorder:
    """Appends the records of one run to its tests.jsonl."""

    def __init__(self, guard: Optional[MemoryGuard], platform: Optional[PlatformLog]) -> None:
        self.guard = guard
        self.platform = platform
        self.log: Optional[JsonlLog] = None
        self.session = 1
        self._readings_written = 0
        self._decisions_written = 0
        self._lock = threading.Lock()

    def open(self, path: Path, *, max_bytes: int) -> None:
        """Append to the log at path from now on (it holds at most max_bytes)."""
        self.log = JsonlLog(path=path, max_bytes=max_bytes)

    def close(self) -> None:
        """Close the log (the reports are built from it next)."""
        assert self.log is not None
        self.log.close()

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record of this kind, stamped with the session."""
        assert self.log is not None
        self.log.append(record(kind, session=self.session, **fields))

    def write_memory(self) -> None:
        """Append the platform samples and the guard's new readings and decisions."""
        with self._lock:
            if self.platform is not None:
                self.platform.flush(self.write)
            if self.guard is not None:
                self._write_memory_locked()

    def flush_platform(self) -> None:
        """Append the platform samples taken since the last flush."""
        if self.platform is not None:
            with self._lock:
                self.platform.flush(self.write)

    def write_machine(self, when: str, version: str, *,
                      bandwidth_override_bytes_per_s: Optional[float]) -> None:
        """Probe the machine and write it (start and end of a run), when platform data is on."""
        if self.platform is not None:
            self.platform.write_machine(
                self.write, when=when, ollama_version=version,
                bandwidth_override_bytes_per_s=bandwidth_override_bytes_per_s,
                container=getattr(self.guard, "backend", None))

    def _write_memory_locked(self) -> None:
        assert self.guard is not None
        readings = self.guard.timeline()
        decisions = self.guard.decisions()
        new_readings = readings[self._readings_written:]
        new_decisions = decisions[self._decisions_written:]
        if not new_readings and not new_decisions:
            return
        self.write("memory", readings=[_reading_dict(r) for r in new_readings],
                   decisions=new_decisions)
        self._readings_written = len(readings)
        self._decisions_written = len(decisions)


def _reading_dict(reading: Any) -> Dict[str, Any]:
    data = to_jsonable(reading)
    if hasattr(reading, "pressure_percent"):
        data["pressure_percent"] = reading.pressure_percent
    return data
