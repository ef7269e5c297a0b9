"""Keeps the container's memory limit in step with the model budget on every memory sample."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, Tuple

from ..adapters.container_backend import ContainerError
from ..core.decider.container_limit import LimitDecision, container_limit_for
from ..core.memory.memory_reading import MemoryReading
from ..core.decider.decision import Action, Decision

_LOG = logging.getLogger(__name__)


class ContainerLimitKeeper:
    """
    A monitor listener that sets the container's limit through the backend (Docker API).

    The listener only computes the target (core/decider/container_limit); a worker thread sets
    it, so a slow engine never delays a sample. Only the newest target is set. Each change is
    logged as a `limit` decision of the guard with its numbers.
    """

    def __init__(self, guard: Any, *, floor_margin_bytes: Optional[int] = None,
                 min_change_bytes: Optional[int] = None) -> None:
        self.guard = guard
        self.monitor = guard.monitor
        self.backend = guard.backend
        self.settings = guard.settings
        buffer = self.settings.safety_buffer_bytes
        self.floor_margin_bytes = floor_margin_bytes if floor_margin_bytes is not None \
            else max(1 << 20, buffer // 2)
        self.min_change_bytes = min_change_bytes if min_change_bytes is not None \
            else max(1 << 20, buffer // 4)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._pending: Optional[Tuple[LimitDecision, MemoryReading]] = None
        self._applied_bytes = 0
        self.changes: List[Tuple[float, int]] = []  # (wall clock, limit bytes) set
        self.errors = 0
        self._thread = threading.Thread(target=self._apply_loop, name="container-limit",
                                        daemon=True)

    def start(self) -> "ContainerLimitKeeper":
        """Set the limit for the latest reading now, then follow every sample."""
        self._thread.start()
        reading = self.monitor.latest() or self.monitor.sample_now()
        self._on_reading(reading)
        self.monitor.add_listener(self._on_reading)
        return self

    def stop(self) -> None:
        """Stop following (the limit set last stays on the container)."""
        self._closed.set()
        self._wake.set()
        remove = getattr(self.monitor, "remove_listener", None)
        if remove is not None:
            remove(self._on_reading)
        self._thread.join(timeout=5.0)

    def _on_reading(self, reading: MemoryReading) -> None:
        if reading.host_total_bytes <= 0 or reading.container.working_set_bytes <= 0:
            return  # no host or no container reading: keep the limit there is
        with self._lock:
            current = self._applied_bytes
        decision = container_limit_for(
            reading, current_limit_bytes=current,
            safety_buffer_bytes=self.settings.safety_buffer_bytes,
            floor_margin_bytes=self.floor_margin_bytes, min_change_bytes=self.min_change_bytes)
        if not decision.change:
            return
        with self._lock:
            self._pending = (decision, reading)
        self._wake.set()

    def _apply_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is None or self._closed.is_set():
                continue
            decision, reading = pending
            try:
                self.backend.set_memory_limit(decision.limit_bytes)
            except (ContainerError, ValueError) as exc:
                self.errors += 1
                _LOG.warning("cannot set the container's memory limit: %s", exc)
                continue
            with self._lock:
                self._applied_bytes = decision.limit_bytes
            self.changes.append((time.time(), decision.limit_bytes))
            self.guard.log_decision("", Decision(Action.KEEP, decision.reason), reading,
                                    action="limit")
