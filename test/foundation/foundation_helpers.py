"""Constants and helpers of the foundation tests (a unique module name: conftest is ambiguous)."""

import os
from pathlib import Path
import sys

REPO_ROOT = Path(__file__).resolve().parents[2]
# Foundation tests use ROS_DOMAIN_ID 10-19.
ACTION_EXCHANGE_DOMAIN_ID = (11 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232


def wheel_prefix() -> str:
    """Return the venv prefix when ROS 2 comes from PyPI wheels there, else ''."""
    return sys.prefix if (Path(sys.prefix) / 'share' / 'ament_cmake').is_dir() else ''
