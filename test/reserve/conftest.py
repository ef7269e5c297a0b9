"""Fixtures for the ROS reserve tests: real rclpy processes that hold known memory."""

import pytest
from reserve_helpers import RosMemoryLauncher


@pytest.fixture(scope='module')
def module_launcher(tmp_path_factory, request):
    domain_id = getattr(request.module, 'ROS_DOMAIN_ID', 50)
    launcher = RosMemoryLauncher(tmp_path_factory.mktemp('reserve'), domain_id)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def launcher(tmp_path, request):
    domain_id = getattr(request.module, 'ROS_DOMAIN_ID', 50)
    launcher = RosMemoryLauncher(tmp_path, domain_id)
    yield launcher
    launcher.stop_all()
