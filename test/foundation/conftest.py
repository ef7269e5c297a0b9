"""Fixtures of the foundation tests: repository paths and a test-only ROS 2 domain."""

import os
from pathlib import Path
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Foundation tests use ROS_DOMAIN_ID 10-19.
ACTION_EXCHANGE_DOMAIN_ID = 11


def wheel_prefix() -> str:
    """Return the venv prefix when ROS 2 comes from PyPI wheels there, else ''."""
    return sys.prefix if (Path(sys.prefix) / 'share' / 'ament_cmake').is_dir() else ''


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
