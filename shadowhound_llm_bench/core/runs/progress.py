"""Run phases and the progress events the engine emits (the action feedback's source)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Optional

from ..memory.memory_reading import MemoryReading


class Phase(str, Enum):
    PLANNING = "planning"
    PULLING = "pulling"
    LOADING = "loading"
    WARMUP = "warmup"
    TESTING = "testing"
    UNLOADING = "unloading"
    RESTARTING = "restarting"
    WAITING_FOR_MEMORY = "waiting_for_memory"
    REPORTING = "reporting"
    DONE = "done"


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run: which model, which phase, how far, and the latest memory."""

    phase: Phase
    model: str
    model_index: int  # 0-based
    model_count: int
    progress: float  # 0..1 over the whole run
    status: str  # one line a person can read
    memory: Optional[MemoryReading] = None


ProgressSink = Callable[[ProgressEvent], None]
