"""Policy settings: presets reproduce the seed's matrix, bad values are refused by name."""

import pytest

from shadowhound_llm_bench.core.decider.policy_settings import (
    PolicySettings, PolicySettingsError, preset_settings, settings_from_mapping)
from shadowhound_llm_bench.core.units import GB, GIB


def test_presets_reproduce_the_seed_behaviour_matrix():
    default = preset_settings("default")
    assert default.unload_after_each_model
    assert default.restart_before_models_over_bytes == 40 * GB  # the seed's 40 GB rule
    fast = preset_settings("fast")
    assert not fast.unload_after_each_model and fast.restart_before_models_over_bytes is None
    assert not fast.make_room_when_needed
    assert fast.restart_on_load_failure and fast.load_retries == 1  # error recovery stays on
    conservative = preset_settings("conservative")
    assert conservative.unload_after_each_model
    assert conservative.restart_before_models_over_bytes == 0  # before every model
    adaptive = preset_settings("adaptive")
    assert not adaptive.unload_after_each_model
    assert adaptive.restart_before_models_over_bytes is None and adaptive.make_room_when_needed


def test_the_40_gb_rule_scales_with_the_simulated_machine():
    thor = preset_settings("default", memory_scale=1 / 64)
    assert thor.restart_before_models_over_bytes == int(40 * GB / 64)
    assert thor.safety_buffer_bytes == int(2 * GIB / 64)
    # The scale is the simulated machine's (simulation.*), not a policy setting of the robot.
    assert "memory_scale" not in thor.as_dict()
    with pytest.raises(PolicySettingsError, match="memory_scale"):
        thor.replace(memory_scale=1.0)


def test_overrides_apply_on_top_of_a_preset():
    settings = preset_settings("adaptive", pressure_alert_percent=70.0, dynamic_keep_alive=True)
    assert settings.pressure_alert_percent == 70.0 and settings.dynamic_keep_alive
    assert settings.preset == "adaptive"


@pytest.mark.parametrize("changes,word", [
    ({"order": "random"}, "order"),
    ({"pressure_alert_percent": 120.0}, "pressure_alert_percent"),
    ({"load_retries": -1}, "load_retries"),
    ({"keep_alive": "5 minutes"}, "keep_alive"),
    ({"keep_alive": True}, "keep_alive"),
    ({"unload_after_each_model": 1}, "unload_after_each_model"),
    ({"num_ctx": 10}, "num_ctx"),
    ({"restart_before_models_over_bytes": -5}, "restart_before_models_over_bytes"),
    ({"cleanup_min_release_fraction": 1.5}, "cleanup_min_release_fraction"),
    ({"safety_buffer_bytes": "2GiB"}, "safety_buffer_bytes"),
    ({"no_such_setting": 1}, "no_such_setting"),
])
def test_bad_values_are_refused_with_the_setting_named(changes, word):
    with pytest.raises(PolicySettingsError, match=word):
        preset_settings("default", **changes)


def test_unknown_preset_and_mapping_input():
    with pytest.raises(PolicySettingsError, match="preset"):
        preset_settings("reckless")
    settings = settings_from_mapping({"preset": "conservative", "memory_scale": 0.5,
                                      "keep_alive": "10m"})
    assert settings.preset == "conservative" and settings.keep_alive == "10m"
    with pytest.raises(PolicySettingsError):
        settings_from_mapping(["not", "a", "mapping"])
    with pytest.raises(PolicySettingsError, match="memory_scale"):
        settings_from_mapping({"memory_scale": 3})


def test_good_keep_alive_forms_are_accepted():
    for value in ("5m", "0", "-1", "1h30m", "30s", 0, -1, 300):
        assert PolicySettings(keep_alive=value).keep_alive == value
