"""Footprint prediction: measured beats metadata beats name, each with its source."""

import pytest

from shadowhound_llm_bench.core.memory.footprint import (
    FootprintPredictor, ModelMetadata, kv_cache_bytes, metadata_from_ollama,
    parameters_from_name, parameters_from_string, prediction_error)
from shadowhound_llm_bench.core.units import GB

LLAMA_70B_INFO = {
    "general.architecture": "llama",
    "llama.block_count": 80,
    "llama.attention.head_count": 64,
    "llama.attention.head_count_kv": 8,
    "llama.embedding_length": 8192,
}


@pytest.mark.parametrize("name,billions", [
    ("llama3.3:70b", 70), ("phi4:14b", 14), ("qwen2.5-coder:32b", 32), ("deepseek-r1:7b", 7),
    ("qwen2.5:0.5b", 0.5), ("mixtral:8x7b", 56), ("smollm:135m", 0.135),
    ("tinyllama-1.1b:latest", 1.1), ("mistral:latest", None), ("llama3.1:8b-instruct-q4_0", 8),
])
def test_parameters_are_read_from_model_names(name, billions):
    assert parameters_from_name(name) == (pytest.approx(billions) if billions else None)


def test_parameter_size_strings_as_ollama_reports_them():
    assert parameters_from_string("14.7B") == pytest.approx(14.7)
    assert parameters_from_string("494.03M") == pytest.approx(0.49403)
    assert parameters_from_string("weird") is None


def test_kv_cache_follows_ollamas_formula():
    # 2 x 80 blocks x 8 kv heads x 128 head dim x 2048 tokens x 2 bytes = 640 MiB
    assert kv_cache_bytes(LLAMA_70B_INFO, 2048) == 2 * 80 * 8 * 128 * 2048 * 2
    assert kv_cache_bytes(LLAMA_70B_INFO, 4096) == 2 * kv_cache_bytes(LLAMA_70B_INFO, 2048)
    explicit = dict(LLAMA_70B_INFO, **{"llama.attention.key_length": 64,
                                       "llama.attention.value_length": 64})
    assert kv_cache_bytes(explicit, 2048) == kv_cache_bytes(LLAMA_70B_INFO, 2048) // 2
    assert kv_cache_bytes({}, 2048) == 0
    assert kv_cache_bytes({"general.architecture": "x"}, 2048) == 0


def test_measured_footprint_wins_over_metadata_and_name():
    predictor = FootprintPredictor(num_ctx=2048)
    metadata = ModelMetadata(size_bytes=42_520_000_000, model_info=LLAMA_70B_INFO)
    measured = predictor.predict("llama3.3:70b", measured_bytes=44 * GB, metadata=metadata)
    assert (measured.source, measured.footprint_bytes) == ("measured", 44 * GB)
    from_metadata = predictor.predict("llama3.3:70b", metadata=metadata)
    assert from_metadata.source == "metadata"
    assert from_metadata.footprint_bytes == 42_520_000_000 + kv_cache_bytes(LLAMA_70B_INFO, 2048)
    from_name = predictor.predict("llama3.3:70b")
    assert from_name.source == "name"
    assert from_name.footprint_bytes == int(70 * 0.65 * GB)  # the seed's 45 GB estimate
    assert "70B" in from_name.detail


def test_name_estimate_scales_with_a_simulated_machine_and_unknown_is_explicit():
    thor = FootprintPredictor(num_ctx=2048, memory_scale=1 / 64)
    assert thor.predict("phi4:14b").footprint_bytes == int(14 * 0.65 * GB / 64)
    metadata = ModelMetadata(size_bytes=42_520_000_000, model_info=LLAMA_70B_INFO)
    scaled = thor.predict("llama3.3:70b", metadata=metadata)
    assert scaled.footprint_bytes == int(
        (42_520_000_000 + kv_cache_bytes(LLAMA_70B_INFO, 2048)) / 64)
    assert "memory scale" in scaled.detail
    assert thor.predict("x", measured_bytes=5000).footprint_bytes == 5000  # already local
    unknown = thor.predict("mistral:latest")
    assert unknown.source == "unknown" and unknown.footprint_bytes == 0 and not unknown.known
    by_parameter_size = thor.predict(
        "mistral:latest", metadata=ModelMetadata(size_bytes=0, model_info={},
                                                 parameter_size="7.2B"))
    assert by_parameter_size.source == "name" and "parameter_size" in by_parameter_size.detail


def test_metadata_from_ollama_replies():
    tag = {"name": "phi4:14b", "size": 9_053_116_391, "details": {"parameter_size": "14.7B"}}
    show = {"model_info": {"general.architecture": "phi3"}}
    metadata = metadata_from_ollama(tag, show)
    assert metadata.size_bytes == 9_053_116_391 and metadata.parameter_size == "14.7B"
    assert metadata_from_ollama(None, show) is None
    assert metadata_from_ollama({"size": "big"}, None) is None


def test_bad_predictor_settings_are_refused():
    with pytest.raises(ValueError):
        FootprintPredictor(num_ctx=0)
    with pytest.raises(ValueError):
        FootprintPredictor(num_ctx=2048, memory_scale=2.0)


def test_prediction_error_is_relative_to_the_measurement():
    assert prediction_error(110, 100) == pytest.approx(0.10)
    assert prediction_error(90, 100) == pytest.approx(-0.10)
    assert prediction_error(90, 0) is None
