"""Shipped scenarios parse and carry the scaled numbers the seed's story needs."""

import glob
import os

import pytest

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.quantities import QuantityError, parse_bytes, parse_go_duration
from shadowhound_llm_bench.sim.scenario import REPO_ROOT, ScenarioError, load_scenario

MB = 1000 ** 2
SEED_MODELS = ['phi4:14b', 'qwen2.5-coder:32b', 'qwq:32b', 'llama3.3:70b', 'deepseek-r1:7b',
               'llama3.1:8b', 'llama3.1:70b', 'gpt-oss:20b']


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(
    REPO_ROOT, 'config', 'scenarios', '*.yaml'))))
def test_every_shipped_scenario_loads(path):
    scenario = load_scenario(path)
    assert scenario.memory_scale > 0 and scenario.time_scale > 0
    assert scenario.container_limit_bytes < scenario.host_total_bytes
    assert scenario.node_parameters['memory_scale'] == pytest.approx(scenario.memory_scale)


def test_thor_scales_128_gb_to_2_gib_and_models_accordingly():
    thor = load_scenario('thor')
    assert thor.physical_bytes(thor.host_total_bytes) == 2 * 1024 ** 3
    assert 135 * MB < thor.physical_bytes(thor.catalog['phi4:14b'].size_bytes) < 150 * MB
    assert 650 * MB < thor.physical_bytes(thor.catalog['llama3.3:70b'].size_bytes) < 690 * MB
    assert 220 * MB < thor.ros_load_physical_bytes < 250 * MB
    assert thor.node_parameters['host_total_bytes'] == 2 * 1024 ** 3
    assert not thor.catalog['gpt-oss:20b'].pulled


def test_catalog_has_the_seed_models_with_kv_formula():
    catalog = builtin_catalog()
    assert set(SEED_MODELS) <= set(catalog)
    phi4 = catalog['phi4:14b']
    assert phi4.kv_cache_bytes(4096) == 2 * 40 * 10 * 128 * 4096 * 2
    assert phi4.footprint_bytes(4096) == phi4.size_bytes + phi4.kv_cache_bytes(4096)
    assert catalog['qwq:32b'].thinking and catalog['deepseek-r1:7b'].thinking


def test_unknown_scenario_is_a_clear_error():
    with pytest.raises(ScenarioError, match='no scenario'):
        load_scenario('atlantis')


def test_sizes_and_go_durations_parse():
    assert parse_bytes('56GiB') == 56 * 1024 ** 3
    assert parse_bytes('9.1GB') == 9_100_000_000
    assert parse_go_duration('1h30m') == 5400
    assert parse_go_duration('-1m') == -60
    assert parse_go_duration('0') == 0
    with pytest.raises(QuantityError, match='missing unit'):
        parse_go_duration('5')
