"""Fixtures of the foundation tests: repository paths and a test-only ROS 2 domain."""

import os
from pathlib import Path

from foundation_helpers import ACTION_EXCHANGE_DOMAIN_ID, REPO_ROOT
import pytest


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def ros_test_env() -> dict:
    """Environment for child ROS processes: own domain, discovery kept on this machine."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(ACTION_EXCHANGE_DOMAIN_ID)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONUNBUFFERED'] = '1'
    return env
