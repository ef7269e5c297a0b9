"""
Container engines for tests: a pinged Docker (or Podman) client, or a skip that names the engine.

The top conftest.py counts the skips whose text says "no Docker engine" / "no Podman engine"
and prints how to start one; every skip here says it that way.
"""

import os

import pytest

# Where scripts/start_docker_engine.sh puts the engine's socket.
DOCKER_SOCKET = '/tmp/dockerd/docker.sock'
PODMAN_HOST = os.environ.get('SHB_PODMAN_HOST', 'unix:///tmp/podman/podman.sock')
# SHB_TEST_ENGINES=docker,podman: the engines the per-engine fixture runs its tests against.
ENGINES = [e.strip() for e in os.environ.get('SHB_TEST_ENGINES', 'docker').split(',')
           if e.strip()] or ['docker']


def use_local_docker_socket() -> None:
    """Point DOCKER_HOST at the test engine's socket when it is unset and the socket is there."""
    if not os.environ.get('DOCKER_HOST') and os.path.exists(DOCKER_SOCKET):
        os.environ['DOCKER_HOST'] = 'unix://' + DOCKER_SOCKET


def connect_engine(engine: str = 'docker', *, base_url: str = '', timeout_s: float = 60.0):
    """
    Return a pinged client of the engine; skip the test where none answers.

    Docker is DOCKER_HOST (or the test engine's socket) unless base_url names another;
    Podman is its Docker-compatible API at SHB_PODMAN_HOST. The client's engine_name says which.
    """
    docker = pytest.importorskip('docker')
    use_local_docker_socket()
    if engine == 'podman':
        base_url = base_url or PODMAN_HOST
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url, timeout=timeout_s)
        else:
            client = docker.from_env(timeout=timeout_s)
        client.ping()
    except Exception as exc:  # no engine answering: nothing to test against
        where = base_url or os.environ.get('DOCKER_HOST')
        pytest.skip(f'no {engine.capitalize()} engine reachable at {where}: {exc}')
    client.engine_name = engine
    return client


@pytest.fixture(scope='session')
def docker_client():
    """Connect to the Docker engine; the test is skipped where none answers."""
    client = connect_engine()
    yield client
    client.close()


@pytest.fixture(name='docker_client', scope='session', params=ENGINES)
def docker_client_per_engine(request):
    """Connect to each engine of SHB_TEST_ENGINES (default docker) in turn; skip without."""
    client = connect_engine(request.param)
    yield client
    client.close()
