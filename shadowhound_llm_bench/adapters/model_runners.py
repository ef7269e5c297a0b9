"""Count Ollama's model runners among the processes of a container or a server process tree."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import psutil

from ..core.ollama.model_runners import is_model_runner


def count_model_runners(pids: Iterable[int]) -> int:
    """Return how many of the processes are model runners (gone or unreadable ones not counted)."""
    count = 0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if is_model_runner(process.name(), process.cmdline()):
                count += 1
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return count


def runner_counter(backend: object) -> Optional[Callable[[], Optional[int]]]:
    """Return a counter of the backend's model runners, or None when it cannot see processes."""
    process_ids = getattr(backend, "process_ids", None)
    if process_ids is None:
        return None

    def count() -> Optional[int]:
        pids = process_ids()
        return None if pids is None else count_model_runners(pids)
    return count
