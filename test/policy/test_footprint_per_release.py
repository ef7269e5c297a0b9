"""The footprint prediction follows the server's release: recorded real replies, both formulas."""

import json

import pytest

from shadowhound_llm_bench.core.memory.footprint import FootprintPredictor, metadata_from_ollama
from shadowhound_llm_bench.core.ollama.gguf_layout import layout_from_show, tensor_bytes
from shadowhound_llm_bench.core.ollama.ollama_footprint import (
    default_num_ctx, ollama_size_estimate, parse_version)
from shadowhound_llm_bench.real_ollama.dist import archive_dirs

# /api/ps size of the 175 MB F16 model (replies-*/api_ps_both_loaded.json) at num_ctx 4096.
RECORDED_PS_SIZE = {'0.12.6': 281_984_000, '0.32.15': 222_214_225}


def _recorded(version, name):
    for folder in archive_dirs():
        path = folder / f'replies-{version}' / name
        if path.exists():
            return json.loads(path.read_text())['body']
    pytest.skip(f'no recorded replies of Ollama {version} (../shared/ollama, SHB_OLLAMA_DIST)')


@pytest.mark.parametrize('version', sorted(RECORDED_PS_SIZE))
def test_the_prediction_equals_the_size_the_real_release_reported(version):
    show = _recorded(version, 'show_tiny.json')
    assert _recorded(version, 'api_version.json') == {'version': version}
    tag = {'name': 'tiny:latest', 'size': 175_000_000, 'details': show['details']}
    prediction = FootprintPredictor(num_ctx=4096).predict(
        'tiny:latest', metadata=metadata_from_ollama(tag, show, version))
    assert prediction.footprint_bytes == RECORDED_PS_SIZE[version]
    assert f'for Ollama {version}' in prediction.detail and 'checked on' in prediction.detail


def test_without_the_servers_version_the_old_weights_and_kv_rule_stays():
    show = _recorded('0.12.6', 'show_tiny.json')
    tag = {'name': 'tiny:latest', 'size': 175_000_000}
    prediction = FootprintPredictor(num_ctx=4096).predict(
        'tiny:latest', metadata=metadata_from_ollama(tag, show))
    assert prediction.detail.startswith('weights ')


def test_a_newer_release_uses_the_newest_formula_and_says_so():
    layout = layout_from_show(_recorded('0.32.15', 'show_tiny.json'))
    newest = ollama_size_estimate(layout, server_version='0.32.15', num_ctx=4096)
    newer = ollama_size_estimate(layout, server_version='0.40.1', num_ctx=4096)
    assert newer.total_bytes == newest.total_bytes and newer.formula == 'llama-server'
    assert 'newer than the newest release checked (0.32.15)' in newer.note
    odd = ollama_size_estimate(layout, server_version='main-build', num_ctx=4096)
    assert 'unknown' in odd.note and odd.formula == 'llama-server'
    between = ollama_size_estimate(layout, server_version='0.20.0', num_ctx=4096)
    assert 'not modelled' in between.note and not between.calibrated_on
    assert not newest.note and newest.calibrated_on == '0.32.15'


def test_a_context_past_the_trained_one_is_clamped_as_the_server_does():
    layout = layout_from_show(_recorded('0.12.6', 'show_tiny.json'))  # trained on 4096
    for version in ('0.12.6', '0.32.15'):
        at_train = ollama_size_estimate(layout, server_version=version, num_ctx=4096)
        past = ollama_size_estimate(layout, server_version=version, num_ctx=16384)
        assert past.total_bytes == at_train.total_bytes and past.num_ctx == 4096
    shorter = ollama_size_estimate(layout, server_version='0.12.6', num_ctx=2048)
    assert shorter.kv_cache_bytes * 2 == at_train.kv_cache_bytes


def test_the_default_context_is_the_models_parameter_else_the_releases():
    assert default_num_ctx('0.12.6') == 4096
    assert default_num_ctx('0.32.15') == 4096  # no GPU
    assert default_num_ctx('0.32.15', gpu_total_bytes=128 * 1024 ** 3) == 262144
    assert default_num_ctx('0.32.15', gpu_total_bytes=24 * 1024 ** 3) == 32768
    show = {'parameters': 'num_ctx                        8192\nstop "<|user|>"'}
    assert default_num_ctx('0.12.6', show) == 8192


def test_versions_and_tensor_sizes_are_read_as_ollama_writes_them():
    assert parse_version('0.12.6') == (0, 12, 6) and parse_version('v0.32.15-rc1') == (0, 32, 15)
    assert parse_version('0.12.6-shb-sim') == (0, 12, 6) and parse_version('dev') is None
    assert tensor_bytes('F16', (768, 32000)) == 768 * 32000 * 2
    assert tensor_bytes('Q4_K', (768, 2048)) == 768 * 2048 // 256 * 144
    assert tensor_bytes('Q8_0', (256,)) == 8 * 34 and tensor_bytes('NEW_TYPE', (4,)) is None
    assert layout_from_show({'model_info': {}, 'tensors': []}) is None
