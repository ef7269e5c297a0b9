"""Unload and restart durations measured on one server, kept next to the footprint cache."""

from __future__ import annotations

import os
import statistics
import threading
from typing import Any, Dict, List, Optional

from ..core.decider.action_costs import SEED_COSTS, ActionCosts
from ..core.ollama.server_key import NO_SERVER, ServerKey
from .state_file import check_format, load_state_file, save_state_file

_VERSION = 2  # 2: durations kept per server (core/ollama/server_key.py)
_KEEP = 20  # most recent durations of each kind; their median is the typical cost
_KINDS = ("unload_s", "restart_s")
COSTS_FILE_NAME = "management_costs.json"


def costs_path_beside(footprint_cache_path: str) -> str:
    """Return the costs file in the footprint cache's folder."""
    return os.path.join(os.path.dirname(os.path.abspath(footprint_cache_path)), COSTS_FILE_NAME)


class ManagementCosts:
    """
    Recent unload and restart durations of one server; with path=None for the run only.

    The file keeps every server's durations; only `server`'s are read and written.
    """

    def __init__(self, path: Optional[str] = None, server: ServerKey = NO_SERVER) -> None:
        self.path = path
        self.server = server
        self._lock = threading.Lock()
        self._others: Dict[str, Any] = {}
        self._durations: Dict[str, List[float]] = self._load()

    def _load(self) -> Dict[str, List[float]]:
        def parse(data: Any) -> Dict[str, Any]:
            servers = check_format(data, _VERSION, "servers")
            if not isinstance(servers, dict):
                raise ValueError("unexpected layout")
            return dict(servers)
        servers = load_state_file(self.path, parse, what="management costs") or {}
        mine = servers.pop(self.server.token(), None) or {}
        self._others = servers
        durations: Dict[str, List[float]] = {}
        for kind in _KINDS:
            values = mine.get(kind) or []
            durations[kind] = ([float(v) for v in values if float(v) > 0][-_KEEP:]
                               if isinstance(values, list) else [])
        return durations

    def costs(self) -> ActionCosts:
        """Typical (median) durations measured so far; the seed's defaults where none is."""
        with self._lock:
            unloads = list(self._durations["unload_s"])
            restarts = list(self._durations["restart_s"])
        where = self.server.describe()
        return ActionCosts(
            unload_s=statistics.median(unloads) if unloads else SEED_COSTS.unload_s,
            restart_s=statistics.median(restarts) if restarts else SEED_COSTS.restart_s,
            unload_source=f"measured on {where}, median of {len(unloads)}" if unloads
            else SEED_COSTS.unload_source,
            restart_source=f"measured on {where}, median of {len(restarts)}" if restarts
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
            mine = {"server": self.server.to_dict(),
                    **{k: list(v) for k, v in self._durations.items()}}
            payload = {"version": _VERSION,
                       "servers": {**self._others, self.server.token(): mine}}
        if self.path:
            save_state_file(self.path, payload, what="management costs")
