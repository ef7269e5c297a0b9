"""Fixtures of the node tests: a real llm_bench node process over the simulator, rclpy clients."""

import os

import pytest

from support.ros_domains import area_domain_id
from support.ros_nodes import ros_test_client

# Node tests use ROS domain ids 60-69; this one for every node started here.
DOMAIN_ID = area_domain_id(61)
os.environ['ROS_DOMAIN_ID'] = str(DOMAIN_ID)
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from node_helpers import BUILD_HINT, interfaces_available  # noqa: E402


@pytest.fixture(scope='session')
def ros_client():
    """One rclpy context and client node for the whole session, spun on a thread."""
    with ros_test_client() as client:
        yield client


@pytest.fixture(scope='module')
def bench_node(tmp_path_factory):
    """Start a llm_bench node whose process backend runs the simulator (small scenario)."""
    if not interfaces_available():
        pytest.skip(BUILD_HINT)
    from node_helpers import NodeProcess
    results = tmp_path_factory.mktemp('results')
    node = NodeProcess.start(results_dir=results, log_dir=tmp_path_factory.mktemp('logs'))
    yield node
    node.stop()
