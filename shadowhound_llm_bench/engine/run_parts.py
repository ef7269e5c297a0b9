"""What the steps of one benchmark run share: the server, the guard, the settings and the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..adapters.ollama_client import OllamaClient
from ..core.runs.suite import Suite
from ..core.settings.run_options import RunOptions
from .cancellation import CancelToken
from .memory_guard_api import MemoryGuard
from .run_progress import RunProgress
from .run_recording import RunRecorder


@dataclass
class RunParts:
    """The collaborators of one run, handed to each of its steps."""

    client: OllamaClient
    guard: Optional[MemoryGuard]
    options: RunOptions
    suite: Suite
    cancel: CancelToken
    progress: RunProgress
    recorder: RunRecorder
