"""Fixtures for the ROS reserve tests: real rclpy processes that hold known memory."""

import os

import pytest
from reserve_helpers import RosMemoryLauncher

# SHB_TEST_DOMAIN_SHIFT moves every test area's domains, so parallel checkouts do not meet.
DEFAULT_DOMAIN_ID = (50 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232


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
