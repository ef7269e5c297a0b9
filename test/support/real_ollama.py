"""
The real Ollama for the real tier: the releases found, the one skip text, servers of each.

Every real-server test runs on each release found (../shared/ollama, SHB_OLLAMA_DIST or an
`ollama` on PATH); without any, they skip with NO_REAL_OLLAMA, which the top conftest.py counts.
"""

import contextlib
import uuid
from typing import Iterator, Optional, Sequence

import pytest

from shadowhound_llm_bench import real_ollama

try:
    REAL_OLLAMA_VERSIONS = [d.version for d in real_ollama.available_dists()]
except (OSError, RuntimeError):  # an archive that cannot be unpacked is a loud skip too
    REAL_OLLAMA_VERSIONS = []
NO_REAL_OLLAMA = ("no real Ollama: neither ../shared/ollama (or SHB_OLLAMA_DIST) nor an `ollama`"
                  " on PATH")
# Parameters of a fixture that runs once per release (one skipped run where there is none).
PER_RELEASE = {'params': REAL_OLLAMA_VERSIONS or [None], 'ids': lambda v: f'ollama-{v}'}


def release_dist(version: Optional[str]):
    """Return the release of this version; skip the test when there is none (version None)."""
    if version is None:
        pytest.skip(NO_REAL_OLLAMA)
    return real_ollama.find_dist(version)


@contextlib.contextmanager
def container_server(docker_client, version: Optional[str], *, name_prefix: str,
                     mem_limit_bytes: int, models: Sequence = ()) -> Iterator[object]:
    """Run a real server of one release in a memory-limited container, its models made."""
    dist = release_dist(version)
    server = real_ollama.start_container_server(
        docker_client, dist, name=f'{name_prefix}-{version}-{uuid.uuid4().hex[:6]}',
        mem_limit_bytes=mem_limit_bytes)
    try:
        real_ollama.ensure_models(server, list(models) or real_ollama.STANDARD_SHAPES)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='session', **PER_RELEASE)
def real_ollama_server(request):
    """Start a real Ollama server (local process) of one release, with the standard models made."""
    server = real_ollama.start_local_server(release_dist(request.param))
    request.addfinalizer(server.stop)
    real_ollama.ensure_models(server, real_ollama.STANDARD_SHAPES)
    return server


@pytest.fixture(**PER_RELEASE)
def real_ollama_dist(request):
    """One real release, for tests that start their own server (a container, a memory limit)."""
    return release_dist(request.param)
