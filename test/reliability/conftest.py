"""Fixtures of the reliability matrix: real simulators, real Docker containers, real nodes."""

import os
import sys
import uuid

import pytest

# Reliability tests use ROS domain ids 70-79; nodes started here use this one.
DOMAIN_ID = (71 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
if not os.environ.get('DOCKER_HOST') and os.path.exists('/tmp/dockerd/docker.sock'):
    os.environ['DOCKER_HOST'] = 'unix:///tmp/dockerd/docker.sock'
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PREFIX = 'reliab'


@pytest.fixture(scope='session')
def docker_client():
    """Connect to the real Docker engine; the test is skipped where none answers."""
    docker = pytest.importorskip('docker')
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # no engine here: nothing to test against
        pytest.skip(f"no Docker engine at {os.environ.get('DOCKER_HOST')}: {exc}")
    yield client
    client.close()


@pytest.fixture
def small_container(docker_client):
    """Start the simulator's small scenario in a uniquely named container; removed afterwards."""
    from shadowhound_llm_bench.sim.launcher import start_container_simulator

    started = []

    def start(faults=None, scenario='small'):
        sim = start_container_simulator(
            docker_client=docker_client, name=f'{PREFIX}-{uuid.uuid4().hex[:8]}',
            scenario=scenario, port=0, extra_faults=faults)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        try:
            sim.remove()
        except Exception:  # already removed by the test itself
            pass


@pytest.fixture
def local_sim():
    """Start the simulator as a local process (small scenario); stopped by its process group."""
    from shadowhound_llm_bench.sim.launcher import start_local_simulator

    started = []

    def start(faults=None):
        sim = start_local_simulator(scenario='small', extra_faults=faults)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.stop()
