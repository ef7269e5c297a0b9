"""Unload and restart durations measured on this machine, kept next to the footprint cache."""

from __future__ import annotations

import os
import statistics
import threading
from typing import Any, Dict, List, Optional

from ..core.action_costs import SEED_COSTS, ActionCosts
from .state_file import load_state_file, save_state_file

_VERSION = 1
_KEEP = 20  # most recent durations of each kind; their median is the typical cost
_KINDS = ("unload_s", "restart_s")
COSTS_FILE_NAME = "management_costs.json"


def costs_path_beside(footprint_cache_path: str) -> str:
    """Return the costs file in the footprint cache's folder."""
    return os.path.join(os.path.dirname(os.path.abspath(footprint_cache_path)), COSTS_FILE_NAME)


class ManagementCosts:
    """Recent unload and restart durations; with path=None they live for the run only."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._durations: Dict[str, List[float]] = self._load()

    def _load(self) -> Dict[str, List[float]]:
        def parse(data: Any) -> Dict[str, List[float]]:
            if data.get("version") != _VERSION:
                raise ValueError("unexpected version")
            durations: Dict[str, List[float]] = {}
            for kind in _KINDS:
                values = data.get(kind) or []
                if not isinstance(values, list):
                    raise ValueError(f"{kind} is not a list")
                durations[kind] = [float(v) for v in values if float(v) > 0][-_KEEP:]
            return durations
        loaded = load_state_file(self.path, parse, what="management costs")
        return loaded or {kind: [] for kind in _KINDS}

    def costs(self) -> ActionCosts:
        """Typical (median) durations measured so far; the seed's defaults where none is."""
        with self._lock:
            unloads = list(self._durations["unload_s"])
            restarts = list(self._durations["restart_s"])
        return ActionCosts(
            unload_s=statistics.median(unloads) if unloads else SEED_COSTS.unload_s,
            restart_s=statistics.median(restarts) if restarts else SEED_COSTS.restart_s,
            unload_source=f"measured, median of {len(unloads)}" if unloads
            else SEED_COSTS.unload_source,
            restart_source=f"measured, median of {len(restarts)}" if restarts
            else SEED_COSTS.restart_source)

    def add_unload(self, duration_s: float) -> None:
        """Record one unload: from sending it to the memory confirmed back (or not)."""
        self._add("unload_s", duration_s)

    def add_restart(self, duration_s: float) -> None:
        """Record one restart: until Ollama answered again."""
        self._add("restart_s", duration_s)

    def _add(self, kind: str, duration_s: float) -> None:
        if not duration_s > 0:
            return
        with self._lock:
            values = self._durations[kind]
            values.append(float(duration_s))
            del values[:-_KEEP]
            payload = {"version": _VERSION, **{k: list(v) for k, v in self._durations.items()}}
        if self.path:
            save_state_file(self.path, payload, what="management costs")
