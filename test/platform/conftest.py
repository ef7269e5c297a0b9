"""Platform test fixtures: a fake Thor tree, the Docker engine."""

import os

import pytest

from shadowhound_llm_bench.sim.platform_sysfs import FakeThor, PowerModel

from support.containers import docker_client  # noqa: F401
from support.ros_domains import area_domain_id

os.environ.setdefault("ROS_DOMAIN_ID", str(area_domain_id(40)))


@pytest.fixture
def fake_thor(tmp_path):
    """Return a fake Thor tree (real files, real scripts) that is closed after the test."""
    machine = FakeThor(str(tmp_path / "thor"), model=PowerModel(), time_scale=1 / 8)
    try:
        yield machine
    finally:
        machine.close()
