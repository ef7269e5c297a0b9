"""Footprints measured on one server (core/ollama/server_key), kept in JSON for predictions."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Optional

from ..core.ollama.server_key import NO_SERVER, ServerKey
from .state_file import check_format, load_state_file, save_state_file

_VERSION = 2  # 2: entries keyed by the server they were measured on


def footprint_key(model: str, digest: str, num_ctx: int,
                  server: ServerKey = NO_SERVER, sources: str = "") -> str:
    """
    One entry per server, model build, context size and memory sources.

    A re-pulled model is measured anew, and so is a model measured through other sources (a
    footprint read from the container's anonymous pages alone says nothing of its GPU memory).
    """
    key = f"{server.token()}|{model}@{(digest or 'nodigest')[:19]}@ctx{num_ctx}"
    return f"{key}@{sources}" if sources else key


def footprint_cache_for(path: Optional[str], gauge: Any,
                        server: ServerKey = NO_SERVER) -> Optional["FootprintCache"]:
    """Return the cache at path (None without one), keyed by server and the chosen sources."""
    if not path:
        return None
    return FootprintCache(path, server,
                          sources_of=gauge.chosen_label if gauge is not None else None)


class FootprintCache:
    """
    Measured footprints of one server by model, digest and num_ctx.

    The file holds every server's entries; this cache reads and writes only `server`'s (another
    backend, container, Ollama version or machine measures anew), through the memory sources
    chosen now. A damaged file is set aside.
    """

    def __init__(self, path: str, server: ServerKey = NO_SERVER, *,
                 sources_of: Optional[Callable[[], str]] = None) -> None:
        self.path = path
        self.server = server
        self.sources_of = sources_of  # the chosen memory sources now ("+"-joined), keys entries
        self._lock = threading.Lock()
        self._entries: Dict[str, Dict[str, Any]] = self._load()

    def _load(self) -> Dict[str, Dict[str, Any]]:
        def parse(data: Any) -> Dict[str, Dict[str, Any]]:
            entries = check_format(data, _VERSION, "footprints")
            if not isinstance(entries, dict):
                raise ValueError("unexpected layout")
            return {k: dict(v) for k, v in entries.items()
                    if isinstance(v, dict) and int(v.get("bytes", 0)) > 0}
        return load_state_file(self.path, parse, what="footprint cache") or {}

    def measured_on(self) -> str:
        """Say where this cache's footprints were measured, for the prediction's detail."""
        return self.server.describe()

    def _sources(self) -> str:
        return self.sources_of() if self.sources_of is not None else ""

    def get(self, model: str, *, digest: str, num_ctx: int) -> Optional[int]:
        """Return the footprint measured earlier, or None."""
        with self._lock:
            entry = self._entries.get(
                footprint_key(model, digest, num_ctx, self.server, self._sources()))
        return int(entry["bytes"]) if entry else None

    def put(self, model: str, *, digest: str, num_ctx: int, footprint_bytes: int) -> None:
        """Record a measurement and write the file atomically."""
        if footprint_bytes <= 0:
            return
        with self._lock:
            self._entries[footprint_key(model, digest, num_ctx, self.server, self._sources())] = {
                "bytes": int(footprint_bytes), "stamp_s": time.time(),
                "server": self.server.to_dict()}
            payload = {"version": _VERSION, "footprints": dict(self._entries)}
            save_state_file(self.path, payload, what="footprint cache")
