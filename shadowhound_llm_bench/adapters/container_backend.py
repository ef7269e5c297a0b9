"""The small interface every container backend offers the memory monitor and guard."""

from __future__ import annotations

import time
from typing import Protocol

from ..core.memory.memory_reading import ContainerSample, ContainerState


class ContainerError(Exception):
    """A container operation failed (the message says which and why)."""


class ContainerNotFound(ContainerError):
    """No container (or process) of that name exists."""


class ContainerRestartTimeout(ContainerError):
    """The container restarted but Ollama did not answer before the deadline."""


class ContainerControlUnavailable(ContainerError):
    """This backend cannot do that (for example restart when only the Ollama API is reachable)."""


class ContainerBackend(Protocol):
    """Where Ollama runs: a Docker container, a local process, or only its API."""

    name: str

    def sample(self) -> ContainerSample:
        """Working set, usage and limit now; never blocks for longer than a file read."""

    def restart(self, *, deadline_s: float) -> float:
        """Restart and wait until Ollama answers; returns the seconds it took."""

    def state(self) -> ContainerState:
        """Report running, restarting, stopped or missing."""

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Cap the container's memory (a runaway load then kills a runner, not the robot)."""

    def close(self) -> None:
        """Release threads and handles (the container itself keeps running)."""


def wait_for_ollama(base_url: str, *, deadline_s: float, started: float) -> float:
    """Poll /api/version until Ollama answers or the deadline passes; seconds since `started`."""
    from .ollama_client import OllamaClient, OllamaError

    remaining = deadline_s - (time.monotonic() - started)
    if remaining <= 0:
        raise ContainerRestartTimeout(f"no time left to wait for Ollama at {base_url}")
    with OllamaClient(base_url=base_url, connect_timeout_s=1.0,
                      request_timeout_s=min(2.0, remaining)) as client:
        try:
            client.wait_until_ready(deadline_s=remaining, poll_s=0.05)
        except OllamaError as exc:
            raise ContainerRestartTimeout(str(exc)) from exc
    return time.monotonic() - started
