"""
A run's progress as the user sees it: one share from 0 to 1 that never goes back.

Each model owns an equal slice of the run; the models of a side-by-side batch advance together by
the sum of their shares. Events go to the run's progress sink; a broken sink never breaks a
measurement.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional, Sequence

from ..core.runs.progress import Phase, ProgressEvent, ProgressSink
from .memory_guard_api import MemoryGuard


class RunProgress:
    """Turns (phase, model, share of the model done) into progress events for the run's sink."""

    def __init__(self, sink: Optional[ProgressSink], guard: Optional[MemoryGuard]) -> None:
        self.sink = sink
        self.guard = guard
        self.model_count = 0
        self._current_index = 0
        self._current_within = 0.0
        self._last_progress = 0.0
        self._lock = threading.RLock()
        self._batch_start = 0
        self._batch_within: Dict[str, float] = {}  # model -> share done, while a batch runs

    def emit(self, phase: Phase, model: str, index: int, within: float, status: str) -> None:
        """Send one progress event (models of a batch report from their own threads)."""
        if self.sink is None:
            return
        with self._lock:
            self._emit_locked(phase, model, index, within, status)

    def guard_phase(self, phase: Phase, model: str, status: str) -> None:
        """Show a step of the guard (a restart, a wait for memory) at the current model's place."""
        self.emit(phase, model, self._current_index, self._current_within, status)

    def begin_batch(self, models: Sequence[str], start: int) -> None:
        """Let these models advance together from the slice of model number start on."""
        with self._lock:
            self._batch_start = start
            self._batch_within = {m: 0.0 for m in models}

    def end_batch(self) -> None:
        """End the batch: models advance one slice each again."""
        with self._lock:
            self._batch_within = {}

    def _emit_locked(self, phase: Phase, model: str, index: int, within: float,
                     status: str) -> None:
        count = max(1, self.model_count)
        share = max(0.0, min(1.0, within))
        if model and phase not in (Phase.REPORTING, Phase.DONE):
            self._current_index, self._current_within = index, within
        if phase == Phase.DONE:
            progress = 1.0
        elif phase in (Phase.PLANNING,):
            progress = 0.0
        elif phase == Phase.REPORTING:
            progress = 0.99
        elif model in self._batch_within:
            # A batch advances by the sum of its models' shares.
            self._batch_within[model] = max(self._batch_within[model], share)
            progress = (self._batch_start + sum(self._batch_within.values())) / count
        else:
            progress = (min(index, count - 1) + share) / count
        # Progress never goes back (a canary or the report step after the last model).
        progress = max(self._last_progress, max(0.0, min(1.0, progress)))
        self._last_progress = progress
        memory = self.guard.latest_reading() if self.guard is not None else None
        assert self.sink is not None
        try:
            self.sink(ProgressEvent(
                phase=phase, model=model, model_index=max(0, index), model_count=count,
                progress=progress, status=status, memory=memory))
        except Exception:  # a broken display must not break a measurement
            pass
