"""Shipped scenarios parse and carry the scaled numbers the seed's story needs."""

import glob
import os

import pytest

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory
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


def test_catalog_has_the_seed_models_and_ollamas_estimate():
    catalog = builtin_catalog()
    assert set(SEED_MODELS) <= set(catalog)
    phi4 = catalog['phi4:14b']
    estimate = estimate_model_memory(phi4, num_ctx=4096)
    # fs/ggml GraphSize: blocks x context x (key + value length) x kv heads x 2 bytes (f16)
    assert estimate.kv_cache_bytes == 40 * 4096 * (128 + 128) * 10 * 2
    assert estimate_model_memory(phi4, num_ctx=4096, kv_cache_type='q8_0').kv_cache_bytes \
        == estimate.kv_cache_bytes // 2
    assert estimate_model_memory(phi4, num_ctx=4096, num_parallel=4).kv_cache_bytes \
        == 4 * estimate.kv_cache_bytes
    llama = catalog['llama3.3:70b']  # llama graph: max(4b(1+4e+c(1+h)), 4b(e+vocab)), b = 512
    assert estimate_model_memory(llama, num_ctx=4096).graph_bytes == max(
        4 * 512 * (1 + 4 * 8192 + 4096 * 65), 4 * 512 * (8192 + 128256))
    # llm/memory.go: repeating layers + output layer (no embedding table) + one spare layer
    assert estimate.weights_bytes < phi4.size_bytes
    assert estimate.buffer_layer_bytes > estimate.kv_cache_bytes // 40
    assert estimate.total_bytes == (estimate.weights_bytes + estimate.kv_cache_bytes
                                    + estimate.buffer_layer_bytes + estimate.graph_bytes
                                    + 457 * 1024 ** 2)
    assert estimate.vram_bytes == estimate.total_bytes
    assert estimate_model_memory(phi4, num_ctx=4096, on_gpu=False).vram_bytes == 0
    assert catalog['qwq:32b'].thinking and catalog['deepseek-r1:7b'].thinking


def test_thor_is_unified_without_scripted_faults_and_thor_cgroup_is_charged():
    thor = load_scenario('thor')
    assert thor.memory_model == 'unified' and thor.faults == {}
    assert thor.fit_check == 'ollama'
    charged = load_scenario('thor_cgroup')
    assert charged.memory_model == 'cgroup_charged' and charged.faults == {}
    assert load_scenario('thor_faults').faults['leak'] == {'qwen2.5-coder:32b': 1.0}


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
