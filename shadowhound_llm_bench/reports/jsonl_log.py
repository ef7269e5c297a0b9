"""The run log: one JSON record per line, flushed and fsynced so a SIGKILL loses nothing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..core.runs.run_records import to_jsonable

LOG_NAME = "tests.jsonl"
# Kept free below a log's bound for the record that ends the run, so a full log still says why.
END_RESERVE_BYTES = 64 * 1024


class RunLogFull(ValueError):
    """A run's log reached the size bound: the run stops, what it measured is kept."""


class JsonlLog:
    """Appends records to a file that is kept open; every append reaches the disk before return."""

    def __init__(self, *, path: Path, max_bytes: Optional[int] = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")
        self._repair_torn_tail()
        self._size_bytes = self.path.stat().st_size

    def _repair_torn_tail(self) -> None:
        # A kill mid-write leaves a last line without newline; start on a fresh line.
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                self._file.write("\n")
                self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(to_jsonable(record), ensure_ascii=False, allow_nan=False) + "\n"
        size_bytes = len(line.encode("utf-8"))
        with self._lock:
            if self._file.closed:
                raise ValueError(f"log {self.path} is closed")
            if self.max_bytes is not None:
                room = self.max_bytes - (0 if record.get("type") == "run_end"
                                         else END_RESERVE_BYTES)
                if self._size_bytes + size_bytes > room:
                    raise RunLogFull(f"the run log reached its bound of {self.max_bytes} bytes "
                                     f"({self.path.name}); the run stops here")
            self._file.write(line)
            self._sync()
            self._size_bytes += size_bytes

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "JsonlLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_records(path: Path) -> Tuple[List[Dict[str, Any]], int]:
    """All parsable records and the number of unparsable lines (a torn last line after a kill)."""
    records: List[Dict[str, Any]] = []
    bad = 0
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(value, dict) and "type" in value:
                records.append(value)
            else:
                bad += 1
    return records, bad
