"""A failed load in words: Ollama's error, its kind, and the kernel's OOM kills the cgroup saw."""

from __future__ import annotations

from typing import Any, Optional

from ..core.ollama.load_failures import load_failure_kind, with_oom_evidence


def oom_kill_count(guard: Any) -> Optional[int]:
    """Return the Ollama container's cgroup oom_kill counter, when its backend reads the cgroup."""
    reader = getattr(getattr(guard, "backend", None), "oom_kills", None)
    return reader() if reader is not None else None


def load_failure_fields(exc: Exception, guard: Any, oom_kills_before: Optional[int]) -> dict:
    """Return the load record's error, its kind by Ollama's text and the OOM kills seen."""
    after = oom_kill_count(guard) if oom_kills_before is not None else None
    error = with_oom_evidence(str(exc), oom_kills_before, after)
    fields = {"error": error, "failure": load_failure_kind(error)}
    if after is not None and oom_kills_before is not None:
        fields["oom_kills"] = after - oom_kills_before
    return fields
