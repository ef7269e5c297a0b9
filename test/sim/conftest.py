"""Fixtures of the simulator tests: real simulator processes, the real Docker or Podman engine."""

import uuid

import pytest
import yaml

from shadowhound_llm_bench.sim.launcher import start_local_simulator
from shadowhound_llm_bench.sim.scenario import scenario_path

from support.containers import docker_client_per_engine  # noqa: F401
from support.simulators import start_sim  # noqa: F401


@pytest.fixture(scope='module')
def small_sim():
    """One simulator of the small scenario shared by a test module."""
    with start_local_simulator(scenario='small') as sim:
        yield sim


@pytest.fixture
def make_scenario(tmp_path):
    """Write a variant of a shipped scenario (dict updates merged one level deep) to tmp_path."""
    def make(base: str = 'small', **changes):
        with open(scenario_path(base), encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        path = tmp_path / f'{base}-{uuid.uuid4().hex[:6]}.yaml'
        path.write_text(yaml.safe_dump(data), encoding='utf-8')
        return str(path)
    return make
