"""The memory guard's books: every decision with its numbers, each model's record, its phase."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, List, Optional, Set

from ..core.decider.decision import Decision
from ..core.memory.memory_reading import MemoryReading
from ..core.runs.progress import Phase
from .memory_guard_api import DecisionRecord, ModelMemoryRecord

_LOG = logging.getLogger("shadowhound_llm_bench.engine.memory_guard")

PhaseListener = Callable[[Phase, str, str], None]


class GuardLog:
    """Decisions in the order they were taken and one memory record per model (thread-safe)."""

    def __init__(self, *, clock: Callable[[], float],
                 on_phase: Optional[PhaseListener] = None) -> None:
        self.clock = clock
        self.on_phase = on_phase
        self._lock = threading.RLock()
        self._records: Dict[str, ModelMemoryRecord] = {}
        self._decisions: List[DecisionRecord] = []
        self.failed_loads: Set[str] = set()  # models whose load failed (a restart clears it)

    def phase(self, phase: Phase, model: str, status: str) -> None:
        """Tell the display what the guard does now; a broken display is ignored."""
        if self.on_phase is None:
            return
        try:
            self.on_phase(phase, model, status)
        except Exception:  # a broken display must not break memory management
            pass

    def record_for(self, model: str) -> ModelMemoryRecord:
        """Return the memory record of a model, made on first use."""
        with self._lock:
            if model not in self._records:
                self._records[model] = ModelMemoryRecord(model=model)
            return self._records[model]

    def decision(self, model: str, decision: Decision, reading: Optional[MemoryReading],
                 predicted_bytes: int = 0, action: Optional[str] = None) -> DecisionRecord:
        """Record a decision with the reading it was taken on; returns the entry (for its time)."""
        entry = DecisionRecord(
            stamp_s=self.clock(), model=model, action=action or decision.action.value,
            reason=decision.reason,
            working_set_bytes=reading.container.working_set_bytes if reading else 0,
            predicted_footprint_bytes=predicted_bytes,
            model_budget_bytes=reading.model_budget_bytes if reading else 0,
            ros_reserve_bytes=reading.ros_reserve_bytes if reading else 0)
        with self._lock:
            self._decisions.append(entry)
            if model:
                self.record_for(model).decisions.append(entry)
        level = logging.WARNING if entry.action in ("skip", "abort", "alert") else logging.INFO
        _LOG.log(level, "memory policy [%s] %s", entry.action, entry.reason)
        return entry

    def records(self) -> List[ModelMemoryRecord]:
        """Every model's record, in the order they were first seen."""
        with self._lock:
            return list(self._records.values())

    def decisions(self) -> List[DecisionRecord]:
        """Every decision, oldest first."""
        with self._lock:
            return list(self._decisions)
