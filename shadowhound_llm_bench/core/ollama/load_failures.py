"""What a failed load's error text says happened: the runner killed, lost, or a refusal."""

from __future__ import annotations

import re
from typing import Optional

from ..decider.cache_drop import is_memory_refusal

RUNNER_KILLED = "runner_killed"  # the model's process got SIGKILL (the kernel's OOM killer)
RUNNER_LOST = "runner_lost"  # the model's process went away while loading (EOF)
MEMORY_REFUSAL = "memory_refusal"  # Ollama refused: "requires more system memory"
OTHER = "other"

# v0.12.6: `llama runner process has terminated: signal: killed` (an `ollama runner` child);
# v0.32.15: `llama-server process has terminated: signal: killed` (a llama-server child).
_KILLED = re.compile(r"(llama runner|llama-server) process has terminated: signal: killed")
# The seed's release under a limit: `do load request: Post "http://127.0.0.1:N/load": EOF`.
_LOST = re.compile(r"do load request: .*\bEOF\b|(llama runner|llama-server) process has "
                   r"terminated")


def load_failure_kind(error: str) -> str:
    """Classify a load error by Ollama's own texts (any release seen so far)."""
    text = error or ""
    if _KILLED.search(text):
        return RUNNER_KILLED
    if _LOST.search(text):
        return RUNNER_LOST
    if is_memory_refusal(text):
        return MEMORY_REFUSAL
    return OTHER


def with_oom_evidence(error: str, oom_kills_before: Optional[int],
                      oom_kills_after: Optional[int]) -> str:
    """Add what the container's memory cgroup saw (its oom_kill counter) to a load error."""
    if oom_kills_before is None or oom_kills_after is None:
        return error
    kills = oom_kills_after - oom_kills_before
    if kills <= 0:
        return error
    return (f"{error} (the kernel OOM-killed {kills} process(es) in the container's memory "
            f"cgroup during the load)")
