"""What a run records of its backend: where Ollama runs, container changes, the unmeasured."""

from __future__ import annotations

from typing import Any, List


def where_ollama_runs(backend: Any) -> str:
    """Say which backend was chosen and why; what it reads now when its container changed."""
    chosen = str(getattr(backend, "selection_reason", "") or "")
    describe = getattr(backend, "describe", None)
    id_changes = getattr(backend, "id_changes", None)
    now = ""
    if describe is not None and (not chosen or (id_changes is not None and id_changes())):
        now = describe()  # nothing said at selection, or the container changed since
    return "; now: ".join(part for part in (chosen, now) if part)


def measures_memory(backend: Any) -> bool:
    """Tell whether the backend measures Ollama's memory (API only does not)."""
    return bool(getattr(backend, "measures_memory", True))


def unmeasured_reason(backend: Any) -> str:
    """Say what the backend cannot measure and why."""
    return str(getattr(backend, "unmeasured", "") or
               "this backend does not measure Ollama's memory")


class ContainerChanges:
    """Hands out each change of the container behind the configured name once."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._id_changes = getattr(backend, "id_changes", None)
        self._seen = len(self._id_changes()) if self._id_changes is not None else 0

    def new(self) -> List[str]:
        """Describe the changes since the last call (recreated, removed, found)."""
        if self._id_changes is None:
            return []
        changes = self._id_changes()[self._seen:]
        self._seen += len(changes)
        return [change.describe(self._backend.name) for change in changes]


def sources_without_gauge(backend: Any) -> str:
    """Say what model memory is read from when no calibrated source applies."""
    if not measures_memory(backend):
        return "ollama_ps_sizes (API only: the sizes Ollama reports in /api/ps, nothing measured)"
    return "cgroup_working_set (memory sources not configured)"
