"""Where memory-source calibrations are kept: a file beside the footprint cache, by server."""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

from ..core.memory.memory_calibration import CalibrationResult
from ..core.ollama.server_key import NO_SERVER, ServerKey
from .state_file import check_format, load_state_file, save_state_file

_LOG = logging.getLogger(__name__)
_VERSION = 2  # 2: entries keyed by server and machine
CALIBRATION_FILE_NAME = "memory_calibration.json"


def calibration_path_beside(footprint_cache_path: str) -> str:
    """Return the calibration file in the footprint cache's folder."""
    return os.path.join(os.path.dirname(os.path.abspath(footprint_cache_path)),
                        CALIBRATION_FILE_NAME)


class CalibrationStore:
    """Calibration results of one server by machine; a damaged file is set aside, not lost."""

    def __init__(self, path: Optional[str], server: ServerKey = NO_SERVER) -> None:
        self.path = path
        self.server = server
        self._entries: Dict[str, Dict[str, Any]] = self._load()

    def _load(self) -> Dict[str, Dict[str, Any]]:
        def parse(data: Any) -> Dict[str, Dict[str, Any]]:
            machines = check_format(data, _VERSION, "machines")
            if not isinstance(machines, dict):
                raise ValueError("unexpected layout")
            return dict(machines)
        return load_state_file(self.path, parse, what="memory calibration") or {}

    def get(self, machine: str) -> Optional[CalibrationResult]:
        """Return the result kept for a machine, or None (also for a damaged entry)."""
        entry = self._entries.get(f"{self.server.token()}|{machine}")
        if entry is None:
            return None
        try:
            return CalibrationResult.from_dict(entry)
        except (KeyError, TypeError, ValueError) as exc:
            _LOG.warning("memory calibration of %s unreadable (%s): calibrating again", machine,
                         exc)
            return None

    def put(self, result: CalibrationResult) -> None:
        """Keep a result and write the file atomically (path None: for this run only)."""
        self._entries[f"{self.server.token()}|{result.machine}"] = {
            **result.to_dict(), "server": self.server.to_dict()}
        if self.path:
            save_state_file(self.path, {"version": _VERSION, "machines": self._entries},
                            what="memory calibration")
