"""The key of the server a run talks to: backend kind, container or unit, version, machine."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from ..adapters.machine_identity import local_machine_record
from ..adapters.ollama_client import OllamaError
from ..core.ollama.server_key import UNKNOWN, ServerKey

_LOG = logging.getLogger(__name__)
_KINDS = {"ApiOnlyContainer": "api_only", "DockerContainer": "docker",
          "ProcessContainer": "process", "SystemdUnit": "systemd"}
VERSION_DEADLINE_S = 3.0


def backend_kind(backend: Any) -> str:
    """Return the backend's kind: api_only, docker (or podman), process, systemd."""
    kind = _KINDS.get(type(backend).__name__, type(backend).__name__)
    engine = getattr(backend, "engine", "")
    return engine if kind == "docker" and isinstance(engine, str) and engine else kind


def backend_target(backend: Any, client: Any) -> str:
    """Return what the backend names: the container or unit; the address where there is none."""
    kind = backend_kind(backend)
    if kind in ("api_only", "process"):
        return str(getattr(client, "base_url", "") or getattr(backend, "name", "") or UNKNOWN)
    return str(getattr(backend, "unit", "") or getattr(backend, "name", "") or UNKNOWN)


def server_key_of(backend: Any, client: Any) -> ServerKey:
    """Return the key of the server behind backend and client ("unknown" version if silent)."""
    try:
        version = client.version(deadline_s=VERSION_DEADLINE_S)
    except (OllamaError, AttributeError) as exc:  # silent server; a client without versions
        _LOG.warning("cannot read Ollama's version for the state key: %s", exc)
        version = UNKNOWN
    return ServerKey(backend=backend_kind(backend), target=backend_target(backend, client),
                     ollama_version=version or UNKNOWN,
                     machine_id=local_machine_record()["machine_id"])


_VERSIONS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def cached_version(client: Any) -> str:
    """Return the server's /api/version, asked once per client ("" when it does not answer)."""
    try:
        return _VERSIONS[client]
    except (KeyError, TypeError):
        pass
    try:
        version = client.version(deadline_s=VERSION_DEADLINE_S)
    except (OllamaError, AttributeError) as exc:  # asked once: a hung server costs one wait
        _LOG.warning("cannot read Ollama's version for the footprint estimate: %s", exc)
        version = ""
    try:
        _VERSIONS[client] = version
    except TypeError:  # a client that cannot be weakly referenced is asked each time
        pass
    return version
