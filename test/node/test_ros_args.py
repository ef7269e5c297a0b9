"""`-p name:=value` arguments as rcl reads them (YAML values)."""

from shadowhound_llm_bench.core.settings.ros_args import parameter_args


def test_values_keep_their_yaml_types():
    assert parameter_args('use_sim_time', True) == ['-p', 'use_sim_time:=true']
    assert parameter_args('publish_rate_hz', 2.0) == ['-p', 'publish_rate_hz:=2.0']
    assert parameter_args('benchmark.models', ['a:1b', 'b']) == [
        '-p', "benchmark.models:=['a:1b', 'b']"]


def test_an_empty_string_is_an_empty_yaml_string():
    # rcl refuses `state_dir:=` with nothing after it.
    assert parameter_args('state_dir', '') == ['-p', "state_dir:=''"]
