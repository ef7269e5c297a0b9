"""
Which backend measures and restarts Ollama: a container, a systemd unit, or only its API.

`auto` takes, in this order: a Docker container of the configured name (engine from
DOCKER_HOST), a Podman container of that name (Podman's Docker-compatible socket), an active
systemd unit of that name (`ollama` -> `ollama.service`, what Ollama's Linux installer sets up),
else the Ollama API alone. The choice and every reason for passing over the others is kept in
the backend's `selection_reason` (log, /diagnostics, report).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from ..core.memory.memory_reading import ContainerState
from .container_backend import (
    ContainerBackend, ContainerControlUnavailable, ContainerError, ContainerNotFound)

_LOG = logging.getLogger(__name__)

BACKEND_KINDS = ("auto", "docker", "podman", "systemd", "api_only", "process")


class BackendSelectionError(ContainerError):
    """The configured backend cannot be used (the message says why and what to change)."""


@dataclass(frozen=True)
class EngineSocket:
    """A Docker-compatible API socket: Docker's, or Podman's service."""

    kind: str  # docker | podman
    base_url: str  # "" = the Docker SDK's own default (DOCKER_HOST, else /var/run/docker.sock)


def podman_sockets() -> List[str]:
    """List Podman's API sockets that exist here: CONTAINER_HOST, rootful, rootless."""
    candidates = []
    env = os.environ.get("CONTAINER_HOST", "")
    if env.startswith("unix://"):
        candidates.append(env)
    candidates.append("unix:///run/podman/podman.sock")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        candidates.append(f"unix://{runtime_dir}/podman/podman.sock")
    return [c for i, c in enumerate(candidates)
            if c not in candidates[:i] and os.path.exists(c[len("unix://"):])]


def engine_sockets(kind: str) -> List[EngineSocket]:
    """List the engines `kind` (auto, docker or podman) looks at, in order."""
    sockets = []
    if kind in ("auto", "docker"):
        sockets.append(EngineSocket("docker", ""))
    if kind in ("auto", "podman"):
        sockets += [EngineSocket("podman", url) for url in podman_sockets()]
    return sockets


def _engine_client(socket: EngineSocket, timeout_s: float) -> Any:
    import docker
    if socket.base_url:
        return docker.DockerClient(base_url=socket.base_url, timeout=timeout_s)
    return docker.from_env(timeout=timeout_s)


def _engine_label(socket: EngineSocket) -> str:
    if socket.base_url:
        return f"{socket.kind} at {socket.base_url}"
    return f"docker at {os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'}"


def _find_container(socket: EngineSocket, *, name: str, ollama_base_url: str,
                    timeout_s: float, **container_options: Any) -> Tuple[Optional[Any], str]:
    """(DockerContainer, why) when the engine has a container of that name, else (None, why)."""
    from .docker_container import DockerContainer
    label = _engine_label(socket)
    try:
        client = _engine_client(socket, timeout_s)
        client.ping()
    except Exception as exc:  # the SDK's and the transport's errors both mean "no engine"
        return None, f"no engine answers ({label}: {type(exc).__name__}: {exc})"
    try:
        backend = DockerContainer(name=name, ollama_base_url=ollama_base_url,
                                  docker_client=client, owns_client=True, engine=socket.kind,
                                  **container_options)
    except ContainerNotFound:
        client.close()
        return None, f"no container named {name!r} ({label})"
    except ContainerError as exc:
        client.close()
        return None, f"{label}: {exc}"
    return backend, f"{socket.kind} container {name!r} ({label})"


def _find_unit(*, name: str, ollama_base_url: str, systemctl: Sequence[str],
               require_active: bool) -> Tuple[Optional[Any], str]:
    from .systemd_unit import SystemdUnit, unit_name
    try:
        unit = SystemdUnit(name=name, ollama_base_url=ollama_base_url, systemctl=systemctl)
    except ContainerNotFound:
        return None, f"no systemd unit {unit_name(name)}"
    except (ContainerControlUnavailable, ContainerError) as exc:
        return None, f"systemd cannot be asked ({exc})"
    state = unit.state()
    if require_active and state is not ContainerState.RUNNING:
        return None, f"systemd unit {unit.unit} is not active ({state.name.lower()})"
    return unit, f"systemd unit {unit.unit} ({state.name.lower()})"


def find_named(*, name: str, ollama_base_url: str, systemctl: Sequence[str] = ("systemctl",),
               engine_timeout_s: float = 2.0) -> Optional[Any]:
    """Return auto's find without the API fallback: a container of that name, else a unit."""
    for socket in engine_sockets("auto"):
        backend, _ = _find_container(socket, name=name, ollama_base_url=ollama_base_url,
                                     timeout_s=engine_timeout_s)
        if backend is not None:
            return backend
    backend, _ = _find_unit(name=name, ollama_base_url=ollama_base_url, systemctl=systemctl,
                            require_active=True)
    return backend


def select_backend(*, kind: str, name: str, ollama_base_url: str, api_client: Any,
                   systemctl: Sequence[str] = ("systemctl",), memory_scale: float = 1.0,
                   engine_timeout_s: float = 10.0, follow: bool = False,
                   **container_options: Any) -> ContainerBackend:
    """
    Return the backend `kind` names (or `auto` finds), with `selection_reason` set.

    api_client is the OllamaClient the API-only backend asks. BackendSelectionError when an
    explicitly named backend cannot be used; `auto` always ends with a backend. With follow,
    an `auto` that found only the API keeps looking for the named container or unit and
    switches to it when it appears (adapters/following_backend.py).
    """
    from .api_only_container import ApiOnlyContainer
    if kind not in BACKEND_KINDS or kind == "process":
        raise BackendSelectionError(
            f"container backend {kind!r} cannot be selected here (choose from "
            f"{', '.join(k for k in BACKEND_KINDS if k != 'process')})")
    passed: List[str] = []
    backend: Any = None
    why = ""
    if kind in ("auto", "docker", "podman"):
        sockets = engine_sockets(kind)
        if kind == "podman" and not sockets:
            raise BackendSelectionError(
                "no Podman API socket (CONTAINER_HOST, /run/podman/podman.sock or "
                "$XDG_RUNTIME_DIR/podman/podman.sock): start `podman system service --time=0`")
        for socket in sockets:
            backend, why = _find_container(socket, name=name, ollama_base_url=ollama_base_url,
                                           timeout_s=engine_timeout_s, **container_options)
            if backend is not None:
                break
            passed.append(why)
        if backend is None and kind != "auto":
            raise BackendSelectionError("; ".join(passed) or f"no {kind} engine")
    if backend is None and kind in ("auto", "systemd"):
        backend, why = _find_unit(name=name, ollama_base_url=ollama_base_url,
                                  systemctl=systemctl, require_active=kind == "auto")
        if backend is None:
            passed.append(why)
            if kind == "systemd":
                raise BackendSelectionError(why)
    if backend is None:
        backend = ApiOnlyContainer(name=name, client=api_client, memory_scale=memory_scale)
        why = f"only the Ollama API at {ollama_base_url}"
    if kind == "auto":
        reason = f"backend auto chose {why}" + (
            f" because: {'; '.join(passed)}" if passed else "")
    else:
        reason = f"backend {kind}: {why}"
    describe = getattr(backend, "describe", None)
    if describe is not None and backend.__class__.__name__ != "ApiOnlyContainer":
        reason += f"; {describe()}"
    backend.selection_reason = reason
    _LOG.info("%s", reason)
    if follow and kind == "auto" and isinstance(backend, ApiOnlyContainer):
        from .following_backend import FollowingBackend
        return FollowingBackend(fallback=backend, name=name, find=lambda: find_named(
            name=name, ollama_base_url=ollama_base_url, systemctl=systemctl))
    return backend
