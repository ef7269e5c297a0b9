"""Fixtures of the reliability matrix: real simulators, real Docker containers, real nodes."""

import os
import sys
import uuid

import pytest

from support.containers import docker_client, use_local_docker_socket  # noqa: F401
from support.ros_domains import area_domain_id
from support.ros_nodes import ros_test_client
from support.simulators import start_sim  # noqa: F401

# Reliability tests use ROS domain ids 70-79; nodes started here use this one.
DOMAIN_ID = area_domain_id(71)
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
use_local_docker_socket()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PREFIX = 'reliab'


@pytest.fixture
def small_container(docker_client):  # noqa: F811 - the shared fixture above
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
def local_sim(start_sim):  # noqa: F811 - the shared fixture above
    """Start the simulator as a local process (small scenario); stopped by its process group."""
    return lambda faults=None: start_sim(scenario='small', extra_faults=faults)


@pytest.fixture
def ros_client():
    """Give each test a fresh rclpy context: no discovery state of an earlier node."""
    from reliab_node import RosClient
    with ros_test_client('reliab_client', RosClient) as client:
        yield client


@pytest.fixture
def start_node(tmp_path):
    """Start llm_bench nodes (small-scenario parameters); each stopped by its process group."""
    from reliab_node import NodeProcess
    started = []

    def start(**params):
        node = NodeProcess.start(log_path=tmp_path / f'node-{len(started)}.log',
                                 params={'results_dir': str(tmp_path / 'results'), **params})
        started.append(node)
        return node
    yield start
    for node in started:
        node.stop()
