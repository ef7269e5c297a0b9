"""Platform test fixtures: a fake Thor tree."""

import os

import pytest

from shadowhound_llm_bench.sim.platform_sysfs import FakeThor, PowerModel

os.environ.setdefault(
    "ROS_DOMAIN_ID", str((40 + int(os.environ.get("SHB_TEST_DOMAIN_SHIFT", "0"))) % 232))


@pytest.fixture
def fake_thor(tmp_path):
    """Return a fake Thor tree (real files, real scripts) that is closed after the test."""
    machine = FakeThor(str(tmp_path / "thor"), model=PowerModel(), time_scale=1 / 8)
    try:
        yield machine
    finally:
        machine.close()
