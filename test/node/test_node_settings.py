"""Node settings: one table of parameters, defaults valid, bad values refused with reasons."""

from pathlib import Path

import pytest
import yaml

from shadowhound_llm_bench.core.settings.node_settings import (
    PARAMETER_SPECS, NodeSettings, NodeSettingsError, default_values, model_name_error)
from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
from shadowhound_llm_bench.core.units import GIB

CONFIG = Path(__file__).resolve().parents[2] / "config" / "llm_bench.yaml"


def test_defaults_are_valid_and_map_to_policy_and_reserve_settings():
    settings = NodeSettings()
    policy = settings.policy_settings()
    assert policy.preset == "default"
    assert policy.restart_before_models_over_bytes == 40 * 1000 ** 3  # the seed's 40 GB rule
    # One set of ROS reserve defaults: the node's are the library's (the CLI's).
    assert settings.reserve_settings() == RosReserveSettings()
    assert settings.reserve_settings().floor_bytes == 15 * GIB
    assert settings.default_models == ["phi4:14b", "qwen2.5-coder:32b", "llama3.3:70b"]


def test_goal_preset_and_order_reach_the_policy():
    policy = NodeSettings().policy_settings(preset="adaptive", order="as_given")
    assert policy.preset == "adaptive" and policy.order == "given"
    assert policy.restart_before_models_over_bytes is None


def test_gib_overrides_reach_the_policy_in_bytes():
    settings = NodeSettings(values={"policy.restart_before_models_over_gib": 0.5,
                                    "policy.safety_buffer_gib": 0.25})
    policy = settings.policy_settings()
    assert policy.restart_before_models_over_bytes == GIB // 2
    assert policy.safety_buffer_bytes == GIB // 4


def test_config_file_lists_every_parameter_with_its_default():
    data = yaml.safe_load(CONFIG.read_text())
    params = data["/**"]["ros__parameters"]
    assert set(params) == {spec.name for spec in PARAMETER_SPECS}
    for name, default in default_values().items():
        assert params[name] == default, name
    assert type(params["publish_rate_hz"]) is float  # rclpy refuses 2 for a double parameter


def test_every_parameter_has_a_description_and_numbers_a_range():
    for spec in PARAMETER_SPECS:
        assert len(spec.description) > 15, spec.name
        if spec.kind in (int, float):
            assert spec.minimum is not None and spec.maximum is not None, spec.name


@pytest.mark.parametrize("changes, fragment", [
    ({"publish_rate_hz": 0.0}, "publish_rate_hz must be at least 0.1"),
    ({"policy.preset": "reckless"}, "policy.preset must be one of"),
    ({"benchmark.repetitions": 0}, "benchmark.repetitions must be at least 1"),
    ({"benchmark.repetitions": 2.5}, "benchmark.repetitions must be a int"),
    ({"ollama_host": "localhost"}, "ollama_host must look like http://host:port"),
    ({"benchmark.models": ["phi4:14b", "bad name!"]}, "is malformed"),
    ({"reserve.exclude_patterns": ["(unclosed"]}, "is not a regular expression"),
    ({"policy.pressure_warn_percent": 99.0, "policy.pressure_error_percent": 90.0},
     "must not be above policy.pressure_error_percent"),
    ({"policy.keep_alive": "five minutes"}, "keep_alive"),
    ({"no_such_setting": 1}, "unknown parameter 'no_such_setting'"),
    ({"publish_rate_hz": 10.0}, "sample_period_s (0.5) must not be longer than one publish"),
    ({"container.backend": "process"}, "container.backend process needs container.command"),
])
def test_invalid_values_are_refused_with_the_reason(changes, fragment):
    with pytest.raises(NodeSettingsError) as info:
        NodeSettings().with_changes(changes)
    assert fragment in str(info.value)


def test_a_refused_change_leaves_the_settings_as_they_were():
    settings = NodeSettings()
    with pytest.raises(NodeSettingsError):
        settings.with_changes({"publish_rate_hz": -1.0})
    assert settings["publish_rate_hz"] == 2.0


def test_several_errors_are_all_reported():
    with pytest.raises(NodeSettingsError) as info:
        NodeSettings(values={"publish_rate_hz": 0.0, "benchmark.num_ctx": 1})
    assert len(info.value.errors) == 2


@pytest.mark.parametrize("name", ["phi4:14b", "llama3.3:70b", "qwen2.5-coder:32b",
                                  "library/phi4:latest", "hf.co/user/model:Q4_K_M"])
def test_ollama_model_names_are_accepted(name):
    assert model_name_error(name) is None


@pytest.mark.parametrize("name", ["", "phi4:", ":14b", "phi 4", "../etc/passwd", "a" * 201,
                                  "phi4:14b;rm"])
def test_malformed_model_names_are_refused(name):
    assert model_name_error(name)
