"""Bad parameters: refused at start-up (non-zero exit) and at run time (set_parameters reason)."""

import subprocess
import sys

from node_helpers import needs_ros
from node_helpers import REPO, node_env, wait_future

pytestmark = needs_ros


def run_node(*ros_args, timeout_s=30.0):
    return subprocess.run([sys.executable, '-m', 'shadowhound_llm_bench.ros.node', '--ros-args',
                           *ros_args], cwd=str(REPO), env=node_env(), capture_output=True,
                          text=True, timeout=timeout_s)


def test_bad_parameters_stop_the_node_at_start_up_with_every_reason():
    proc = run_node('-p', 'publish_rate_hz:=0.0', '-p', 'policy.preset:=reckless',
                    '-p', 'benchmark.repetitions:=2.5', '-p', 'ollama_host:=localhost')
    assert proc.returncode == 2
    err = proc.stderr
    assert 'publish_rate_hz must be within 0.1..50, got 0.0' in err
    assert "policy.preset must be one of default, fast, conservative, adaptive, got 'reckless'" \
        in err
    assert 'benchmark.repetitions must be a whole number' in err
    assert 'ollama_host must look like http://host:port' in err
    assert 'Traceback' not in err + proc.stdout


def test_a_bad_parameters_file_is_refused(tmp_path):
    params = tmp_path / 'bad.yaml'
    params.write_text('/**:\n  ros__parameters:\n    policy.pressure_warn_percent: 99.0\n'
                      '    policy.pressure_error_percent: 90.0\n')
    proc = run_node('--params-file', str(params))
    assert proc.returncode == 2
    assert 'policy.pressure_warn_percent (99) must not be above' in proc.stderr


def _set(ros_client, **values):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = ros_client.node.create_client(SetParameters, '/llm_bench/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        request = SetParameters.Request(
            parameters=[Parameter(k.replace('__', '.'), value=v).to_parameter_msg()
                        for k, v in values.items()])
        return wait_future(client.call_async(request), 10.0).results
    finally:
        ros_client.node.destroy_client(client)


def _describe(ros_client, *names):
    from rcl_interfaces.srv import DescribeParameters
    client = ros_client.node.create_client(DescribeParameters,
                                           '/llm_bench/describe_parameters')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        return wait_future(client.call_async(DescribeParameters.Request(names=list(names))),
                           10.0).descriptors
    finally:
        ros_client.node.destroy_client(client)


def test_bad_values_are_refused_at_run_time_with_the_reason(ros_client, bench_node):
    (result,) = _set(ros_client, policy__preset='reckless')
    assert not result.successful
    assert "policy.preset must be one of default, fast, conservative, adaptive" in result.reason

    (result,) = _set(ros_client, policy__pressure_error_percent=50.0)  # below the warning
    assert not result.successful and 'must not be above' in result.reason

    (result,) = _set(ros_client, benchmark__models=['fine:1b', 'bad name'])
    assert not result.successful and "model name 'bad name' is malformed" in result.reason

    (result,) = _set(ros_client, benchmark__repetitions=500)
    assert not result.successful  # outside the descriptor's integer range

    (result,) = _set(ros_client, publish_rate_hz=5.0)
    assert not result.successful  # read-only: takes effect at start-up only

    (result,) = _set(ros_client, policy__preset='adaptive')
    assert result.successful
    (result,) = _set(ros_client, policy__preset='default')
    assert result.successful


def test_parameters_carry_descriptions_and_ranges(ros_client, bench_node):
    repetitions, rate, preset = _describe(ros_client, 'benchmark.repetitions',
                                          'publish_rate_hz', 'policy.preset')
    assert repetitions.integer_range[0].from_value == 1
    assert repetitions.integer_range[0].to_value == 100
    assert rate.read_only and rate.floating_point_range[0].from_value == 0.1
    assert 'adaptive' in preset.description and 'Memory policy preset' in preset.description


def test_former_parameter_names_still_work_with_a_warning_naming_the_new_name():
    # publish_rate_hz 0 stops the node at start-up, after the parameters are read.
    proc = run_node('-p', 'policy.memory_scale:=0.125', '-p', 'host.simulated_total_gib:=1.0',
                    '-p', 'publish_rate_hz:=0.0')
    assert proc.returncode == 2
    err = proc.stderr
    assert "'policy.memory_scale' is deprecated" in err and "use 'simulation.memory_scale'" in err
    assert "use 'simulation.total_gib'" in err
    assert 'unknown parameter' not in err and 'Traceback' not in err
    # The value is checked under the new name.
    proc = run_node('-p', 'policy.memory_scale:=3.0')
    assert proc.returncode == 2
    assert 'simulation.memory_scale must be within 0.0001..1, got 3.0' in proc.stderr
    # Both names at once: which one is meant is not guessed.
    proc = run_node('-p', 'policy.memory_scale:=0.5', '-p', 'simulation.memory_scale:=0.25')
    assert proc.returncode == 2
    assert "give 'simulation.memory_scale' only" in proc.stderr
