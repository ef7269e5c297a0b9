"""Fixtures of the simulator tests: real simulator processes, the real Docker engine."""

import os
import uuid

import pytest
import yaml

from shadowhound_llm_bench.sim.launcher import start_local_simulator
from shadowhound_llm_bench.sim.scenario import scenario_path

DOCKER_SOCKET = '/tmp/dockerd/docker.sock'


@pytest.fixture(scope='module')
def small_sim():
    """One simulator of the small scenario shared by a test module."""
    with start_local_simulator(scenario='small') as sim:
        yield sim


@pytest.fixture
def make_scenario(tmp_path):
    """Write a variant of a shipped scenario (dict updates merged one level deep) to tmp_path."""
    def make(base: str = 'small', **changes):
        with open(scenario_path(base), encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        path = tmp_path / f'{base}-{uuid.uuid4().hex[:6]}.yaml'
        path.write_text(yaml.safe_dump(data), encoding='utf-8')
        return str(path)
    return make


@pytest.fixture
def start_sim():
    """Start simulators for one test; every one is stopped afterwards."""
    started = []

    def start(**kwargs):
        sim = start_local_simulator(**kwargs)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.stop()


ENGINES = [e.strip() for e in os.environ.get('SHB_TEST_ENGINES', 'docker').split(',')
           if e.strip()] or ['docker']


@pytest.fixture(scope='session', params=ENGINES)
def docker_client(request):
    """Return a client of the Docker engine, or Podman's (SHB_TEST_ENGINES); skip without."""
    docker = pytest.importorskip('docker')
    if not os.environ.get('DOCKER_HOST') and os.path.exists(DOCKER_SOCKET):
        os.environ['DOCKER_HOST'] = 'unix://' + DOCKER_SOCKET
    try:
        if request.param == 'podman':
            client = docker.DockerClient(base_url=os.environ.get(
                'SHB_PODMAN_HOST', 'unix:///tmp/podman/podman.sock'), timeout=30)
        else:
            client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # no engine here
        pytest.skip(f'no {request.param.capitalize()} engine: {exc}')
    yield client
    client.close()
