"""No container access: Ollama's memory estimated from the model sizes /api/ps reports."""

from __future__ import annotations

import time

from ..core.memory.memory_reading import ContainerSample, ContainerState
from .container_backend import ContainerControlUnavailable
from .ollama_client import OllamaClient, OllamaError


class ApiOnlyContainer:
    """
    Ollama reachable only over HTTP: memory = base + sum of /api/ps sizes; no restart.

    These sizes are what Ollama says it holds, not a measurement: footprints taken from them
    and cleanup judged on them would be true by construction, so the guard reports both as
    unverified (`measures_memory` is False).
    """

    measures_memory = False

    def __init__(self, *, name: str, client: OllamaClient, base_bytes: int = 0,
                 memory_scale: float = 1.0) -> None:
        self.name = name
        self._client = client
        self.base_bytes = base_bytes
        self.memory_scale = memory_scale  # < 1 on a simulated machine only (simulation.*)
        self.selection_reason = ""
        self.unmeasured = (
            f"footprints and cleanup unverified: only the Ollama API at {client.base_url} is "
            "reachable (memory = sum of /api/ps sizes; no container, unit or process to "
            "measure, no restart)")

    def describe(self) -> str:
        """Say what this backend can and cannot do (log, /diagnostics)."""
        return f"only the Ollama API at {self._client.base_url}: {self.unmeasured}"

    def sample(self) -> ContainerSample:
        """Sizes of the loaded models (an HTTP call on localhost)."""
        try:
            models = self._client.ps()
        except OllamaError:
            return ContainerSample(time.time(), 0, 0, 0, ContainerState.UNKNOWN)
        loaded = sum(int(m.get("size") or 0) for m in models)
        total = self.base_bytes + int(loaded * self.memory_scale)
        return ContainerSample(time.time(), total, total, 0)

    def restart(self, *, deadline_s: float) -> float:
        """Not possible without container access."""
        raise ContainerControlUnavailable(
            f"{self.name}: only the Ollama API is reachable, the container cannot be restarted")

    def state(self) -> ContainerState:
        """Report RUNNING when the API answers, else UNKNOWN."""
        try:
            self._client.version()
        except OllamaError:
            return ContainerState.UNKNOWN
        return ContainerState.RUNNING

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Not possible without container access."""
        raise ContainerControlUnavailable(
            f"{self.name}: only the Ollama API is reachable, no memory limit can be set")

    def close(self) -> None:
        """Nothing to release (the client belongs to the caller)."""
