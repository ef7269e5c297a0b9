"""Fixtures for the ROS reserve tests: real rclpy processes that hold known memory, Docker."""

import pytest
from reserve_helpers import RosMemoryLauncher

from support.containers import docker_client  # noqa: F401
from support.ros_domains import area_domain_id

# SHB_TEST_DOMAIN_SHIFT moves every test area's domains, so parallel checkouts do not meet.
DEFAULT_DOMAIN_ID = area_domain_id(50)


@pytest.fixture(scope='module')
def module_launcher(tmp_path_factory, request):
    domain_id = getattr(request.module, 'ROS_DOMAIN_ID', DEFAULT_DOMAIN_ID)
    launcher = RosMemoryLauncher(tmp_path_factory.mktemp('reserve'), domain_id)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def launcher(tmp_path, request):
    domain_id = getattr(request.module, 'ROS_DOMAIN_ID', DEFAULT_DOMAIN_ID)
    launcher = RosMemoryLauncher(tmp_path, domain_id)
    yield launcher
    launcher.stop_all()
