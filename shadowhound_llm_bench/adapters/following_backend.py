"""`auto` with nothing found yet: the Ollama API now, the named container the moment it appears."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from ..core.memory.memory_reading import ContainerSample, ContainerState

_LOG = logging.getLogger(__name__)

LOOK_PERIOD_S = 2.0


class FollowingBackend:
    """
    Delegates to the API-only fallback and looks for the named backend on its own thread.

    The look never runs on the sampling thread (an engine that hangs must not stop sampling).
    Once found, every call goes to the found backend (a Docker container keeps following its
    name itself) and `on_found` is told, e.g. to leave its processes out of the ROS scan.
    """

    def __init__(self, *, fallback: Any, find: Callable[[], Optional[Any]], name: str,
                 period_s: float = LOOK_PERIOD_S,
                 on_found: Optional[Callable[[Any], None]] = None) -> None:
        self.name = name
        self.period_s = period_s
        self.on_found = on_found
        self._fallback = fallback
        self._current = fallback
        self._find = find
        self._found = threading.Event()
        self._stop = threading.Event()
        self.selection_reason = str(getattr(fallback, "selection_reason", "") or "")
        self._thread = threading.Thread(target=self._look, name="backend-follow", daemon=True)
        self._thread.start()

    @property
    def measures_memory(self) -> bool:
        """Tell whether memory is measured: yes once the named backend is found."""
        return bool(getattr(self._current, "measures_memory", True))

    @property
    def found(self) -> bool:
        """Tell whether the named container, unit or process was found."""
        return self._found.is_set()

    def waiting_fix(self) -> str:
        """Say what is missing and how to fix it ("" once found), for /diagnostics and the log."""
        if self.found:
            return ""
        # The fix first: `ros2 topic echo` cuts long strings after 128 characters.
        return (f"not found yet. Fix: start Ollama in a container named {self.name!r} (docker "
                f"run --name {self.name} ...) or as the unit {self.name}.service, or set "
                "container.name to the container Ollama runs in. Meanwhile: no container or "
                f"active systemd unit named {self.name!r} yet, so memory is estimated from the "
                "Ollama API (footprints and cleanup unverified, no restart); measurement starts "
                f"the moment it appears (looked for every {self.period_s:g} s), no relaunch")

    def _look(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                found = self._find()
            except Exception as exc:  # an engine that breaks is asked again next period
                _LOG.debug("looking for %s failed: %s", self.name, exc)
                continue
            if found is None:
                continue
            if self._stop.is_set():
                found.close()
                return
            describe = getattr(found, "describe", None)
            self.selection_reason = (f"backend auto found {self.name!r} after the start: "
                                     + (describe() if describe is not None else "measured"))
            self._current = found
            self._found.set()
            _LOG.info("%s", self.selection_reason)
            if self.on_found is not None:
                try:
                    self.on_found(found)
                except Exception as exc:  # the backend is in use either way
                    _LOG.warning("after finding %s: %s", self.name, exc)
            return

    def sample(self) -> ContainerSample:
        """Sample whichever backend is current."""
        return self._current.sample()

    def state(self) -> ContainerState:
        """State of the current backend."""
        return self._current.state()

    def restart(self, *, deadline_s: float) -> float:
        """Restart through the found backend (the fallback refuses: no container to restart)."""
        return self._current.restart(deadline_s=deadline_s)

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Set the limit through the current backend."""
        self._current.set_memory_limit(limit_bytes)

    def describe(self) -> str:
        """Say what the current backend reads, or that the named one is still looked for."""
        describe = getattr(self._current, "describe", None)
        now = describe() if describe is not None else ""
        return now if self.found else f"{now}; still looking for {self.name!r}"

    def __getattr__(self, attribute: str) -> Any:
        # container_id, id_changes, sampling ...: the current backend's, when it has them.
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self._current, attribute)

    def close(self) -> None:
        """Stop looking and close the backend in use."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        close = getattr(self._current, "close", None)
        if close is not None:
            close()
