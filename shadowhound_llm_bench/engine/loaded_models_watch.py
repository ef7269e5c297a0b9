"""Keep the count of loaded models true between runs: poll Ollama's /api/ps at a modest rate."""

# The guard updates the count whenever it asks Ollama during a run; outside runs nobody did, so
# the topic and /diagnostics said 0 while a killed run's model (or another client's) was loaded.

from __future__ import annotations

import logging
import threading
from typing import Callable, List, Optional

from ..adapters.ollama_client import OllamaClient, OllamaError

_LOG = logging.getLogger(__name__)

DEFAULT_PERIOD_S = 2.0
DEADLINE_S = 2.0


class LoadedModelsWatch:
    """Polls /api/ps on its own thread and hands the count to a sink (the memory monitor)."""

    def __init__(self, *, base_url: str, sink: Callable[[int], None],
                 period_s: float = DEFAULT_PERIOD_S,
                 on_names: Optional[Callable[[List[str]], None]] = None) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self._client = OllamaClient(base_url=base_url, connect_timeout_s=DEADLINE_S,
                                    request_timeout_s=DEADLINE_S)
        self._sink = sink
        self._on_names = on_names  # each answer's names (the node unloads its own leftovers)
        self.period_s = period_s
        self._lock = threading.Lock()
        self._names: Optional[List[str]] = None  # None: Ollama did not answer the last poll
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "LoadedModelsWatch":
        """Poll once now, then every period on a daemon thread."""
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="loaded-models", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (within one request deadline) and close the HTTP client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DEADLINE_S + self.period_s + 1.0)
            self._thread = None
        self._client.close()

    def names(self) -> Optional[List[str]]:
        """Return the models listed by the last poll; None when Ollama did not answer."""
        with self._lock:
            return None if self._names is None else list(self._names)

    def poll(self) -> Optional[List[str]]:
        """Ask /api/ps once (with its deadline); the sink gets the count when Ollama answers."""
        try:
            names = [str(e.get("name") or e.get("model") or "") for e in self._client.ps()]
        except OllamaError as exc:
            _LOG.debug("cannot list loaded models: %s", exc)
            with self._lock:
                self._names = None
            return None
        with self._lock:
            self._names = names
        self._sink(len(names))
        if self._on_names is not None:
            try:
                self._on_names(names)
            except Exception as exc:  # the count stays true whatever the listener does
                _LOG.warning("loaded-models listener failed: %s", exc)
        return names

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.poll()
