"""Bad configuration files: node parameters, suites, scenarios. A clear error, never a crash."""

import os
import subprocess
import sys
import time

import pytest

from shadowhound_llm_bench.core.settings.ros_args import params_files
from shadowhound_llm_bench.core.runs.suite import SuiteError, load_suite
from shadowhound_llm_bench.sim.scenario import ScenarioError, load_scenario

from reliab_node import NodeProcess, READY_TEXT, needs_ros, ros_arg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD_TASK = ('  - id: t\n    kind: instruction\n    prompt: hi\n'
             '    checks: [{type: word_count, max: 5, points: 1}]\n')


def _env():
    path = [REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED='1')


def _node(params_file, tmp_path, *, deadline_s=20.0):
    """Start the node with a parameters file; return (exit code, None once ready; its output)."""
    log_path = tmp_path / 'node.log'
    node = NodeProcess.start(log_path=log_path, params={'ollama_host': 'http://127.0.0.1:9'},
                             extra_args=['--params-file', str(params_file)])
    try:
        end = time.monotonic() + deadline_s
        while node.process.poll() is None and time.monotonic() < end:
            if READY_TEXT in node.log():
                break
            time.sleep(0.1)
        code = node.process.poll()
    finally:
        node.stop()
    return code, node.log()


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- node parameters file
@needs_ros
def test_node_params_file_with_wrong_types_stops_the_node_with_every_reason(tmp_path):
    path = _write(tmp_path, 'types.yaml', '/**:\n  ros__parameters:\n'
                  '    request_timeout_s: "long"\n    benchmark.models: 3\n')
    code, output = _node(path, tmp_path)
    assert code == 2
    assert "request_timeout_s must be a number with a decimal point" in output
    assert 'benchmark.models must be a list of strings, got 3' in output
    assert 'Traceback' not in output


@needs_ros
@pytest.mark.parametrize('text, reason', [
    ('/**:\n  ros__parameters:\n    publish_rate_hz: [1, 2\n', 'is not valid YAML'),
    ('publish_rate_hz: 5.0\n', "'publish_rate_hz' is a value outside 'ros__parameters'"),
    ('- 1\n', "must map node names to 'ros__parameters'"),
])
def test_node_params_file_that_is_not_yaml_is_one_clear_error(tmp_path, text, reason):
    path = _write(tmp_path, 'broken.yaml', text)
    code, output = _node(path, tmp_path)
    assert code == 2
    assert f'[llm_bench] not started: parameters file {path}' in output and reason in output
    assert 'Traceback' not in output and 'RCLError' not in output


@needs_ros
def test_a_missing_params_file_is_one_clear_error(tmp_path):
    code, output = _node(tmp_path / 'nowhere.yaml', tmp_path)
    assert code == 2
    assert f'cannot read parameters file {tmp_path / "nowhere.yaml"}' in output
    assert 'Traceback' not in output


@needs_ros
@pytest.mark.parametrize('section', ['/**', 'llm_bench', '/llm_bench', '/**/llm_bench'])
def test_node_params_file_with_an_unknown_key_names_it(tmp_path, section):
    path = _write(tmp_path, 'unknown.yaml', f'{section}:\n  ros__parameters:\n'
                  '    publish_rate_hzz: 5.0\n')
    code, output = _node(path, tmp_path)
    assert code == 2
    assert ("invalid parameter: unknown parameter 'publish_rate_hzz' "
            "(did you mean 'publish_rate_hz'?)") in output
    assert 'Traceback' not in output


@needs_ros
def test_an_unknown_parameter_on_the_command_line_is_refused(tmp_path):
    node = NodeProcess.start(log_path=tmp_path / 'node.log', params={},
                             extra_args=ros_arg('benchmark.model', ['qwen2.5:0.5b']))
    try:
        code = node.process.wait(timeout=20)
    finally:
        node.stop()
    assert code == 2
    assert "unknown parameter 'benchmark.model' (did you mean 'benchmark.models'?)" in node.log()


@needs_ros
def test_a_ros_argument_rcl_cannot_parse_is_one_line_not_a_traceback(tmp_path):
    node = NodeProcess.start(log_path=tmp_path / 'node.log', params={},
                             extra_args=['-p', 'benchmark.models:=[qwen2.5:0.5b]'])
    try:
        code = node.process.wait(timeout=20)
    finally:
        node.stop()
    assert code == 2
    assert '[llm_bench] not started: bad ROS arguments: ' in node.log()
    assert 'Traceback' not in node.log()


def test_params_files_are_read_from_the_ros_arguments_only():
    argv = ['node', '--params-file', 'not-ros.yaml', '--ros-args', '-p', 'a:=1',
            '--params-file', 'one.yaml', '--', 'x', '--ros-args', '--params-file', 'two.yaml']
    assert params_files(argv) == ['one.yaml', 'two.yaml']


@needs_ros
def test_a_shared_params_file_with_other_nodes_and_namespaced_sections_starts(tmp_path):
    # Other nodes' parameters (Nav2 beside us) are theirs; our own sections in every form apply.
    path = _write(tmp_path, 'shared.yaml', (
        '/**:\n  ros__parameters:\n    use_sim_time: false\n'
        'controller_server:\n  ros__parameters:\n    controller_frequency: 20.0\n'
        '/other_ns/llm_bench:\n  ros__parameters:\n    publish_rate_hzz: 1.0\n'
        'llm_bench:\n  ros__parameters:\n    benchmark:\n      repetitions: 2\n'
        '/llm_bench:\n  ros__parameters:\n    feedback_period_s: 1.0\n'))
    code, output = _node(path, tmp_path)
    assert code is None, output  # ready, still running when stopped
    assert 'unknown parameter' not in output


# ---------------------------------------------------------------- suite files
def test_suite_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path):
    path = _write(tmp_path, 'broken.yaml', 'name: x\ntasks: [\n')
    with pytest.raises(SuiteError, match=f'{path}: not valid YAML'):
        load_suite(str(path))


@pytest.mark.parametrize('text, message', [
    ('name: x\ntasks: 5\n', "needs a non-empty list of 'tasks'"),
    ('- a\n- b\n', 'top level must be a mapping'),
    ('name: x\ntasks:\n  - id: t\n    kind: instruction\n    prompt: [1, 2]\n'
     '    checks: [{type: word_count, max: 5, points: 1}]\n', "needs a non-empty 'prompt'"),
    ('name: x\ntasks:\n' + GOOD_TASK.replace('points: 1', 'points: ten'),
     "needs positive 'points'"),
])
def test_suite_file_with_wrong_types_is_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(str(_write(tmp_path, 'types.yaml', text)))


def test_the_cli_refuses_a_bad_suite_file_before_anything_runs(tmp_path):
    path = _write(tmp_path, 'broken.yaml', 'name: x\ntasks: [\n')
    proc = subprocess.run(
        [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--host',
         'http://127.0.0.1:9', '--models', 'qwen2.5:0.5b', '--suite', str(path), '--unguarded',
         '--results-dir', str(tmp_path / 'results'), '--quiet'],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f'error: {path}: not valid YAML' in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'results').exists()


@pytest.mark.parametrize('text, message', [
    ('name: x\ncolour: red\ntasks:\n' + GOOD_TASK, "unknown key #2; known: name"),
    ('name: x\ntasks:\n' + GOOD_TASK + '    promt: typo\n',
     "task #1: unknown key #5 \\(did you mean 'prompt'\\?\\)"),
    ('name: x\ntasks:\n' + GOOD_TASK.replace('max: 5', 'max: many'),
     "task #1 check #1: word_count 'max' must be a whole number >= 0, got a str"),
    ('name: x\ntasks:\n' + GOOD_TASK.replace('max: 5', 'mx: 5'),
     "task #1 check #1 \\(word_count\\): unknown key #2 \\(did you mean 'max'\\?\\)"),
    ('name: x\ntasks:\n' + GOOD_TASK.replace('{type: word_count, max: 5, points: 1}',
                                             '{type: regex, pattern: "[", points: 1}'),
     "task #1 check #1: regex 'pattern' does not compile"),
])
def test_suite_file_with_unknown_keys_or_bad_check_values_is_refused(tmp_path, text, message):
    path = _write(tmp_path, 'unknown.yaml', text)
    with pytest.raises(SuiteError, match=message) as caught:
        load_suite(str(path))
    assert str(caught.value).startswith(f'{path}: ')  # the file is named too


# ---------------------------------------------------------------- scenario files
def test_scenario_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path):
    path = _write(tmp_path, 'broken.yaml', 'name: x\nmemory_scale: [1\n')
    with pytest.raises(ScenarioError, match=f'cannot read scenario {path}'):
        load_scenario(str(path))


@pytest.mark.parametrize('text, message', [
    ('name: x\nmemory_scale: lots\n', "could not convert string to float: 'lots'"),
    ('name: x\nmachine: {host_total: [1]}\n', 'not a size: \\[1\\]'),
    ('name: x\nros_load: {amcl: lots}\n', "not a size: 'lots'"),
    ('- 1\n', 'a scenario must be a mapping'),
])
def test_scenario_file_with_wrong_types_is_refused(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(str(_write(tmp_path, 'types.yaml', text)))


def test_the_simulator_refuses_a_bad_scenario_file_in_one_line(tmp_path):
    for text, message in (('name: x\nmemory_scale: lots\n', "could not convert"),
                          ('name: x\nfaults: {leek: {a: 1}}\n', "unknown fault 'leek'")):
        path = _write(tmp_path, 'bad.yaml', text)
        proc = subprocess.run(
            [sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario', str(path),
             '--port', '0'], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2
        assert proc.stderr.startswith('ollama_sim: ') and message in proc.stderr
        assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('text, message', [
    ('name: x\nmemory_scael: 1/64\n',
     'unknown key memory_scael \\(did you mean memory_scale\\?\\)'),
    ('name: x\nmachine: {host_total: 12GiB, hots: 3}\n', 'unknown key machine.hots'),
    ('name: x\ntime_scale: -1\n', 'time_scale must be a positive number .*, got -1'),
    ('name: x\ntime_scale: 1/0\n', 'time_scale must be a positive number'),
    ('name: x\nmemory_scale: lots\n', "memory_scale must be a positive number .*, got 'lots'"),
    ('name: x\nserver: {max_loaded_models: 0}\n', 'server.max_loaded_models must be a whole'),
    ('name: x\nserver: {unload_delay_s: soon}\n', 'server.unload_delay_s must be seconds'),
    ('name: x\ncatalog: {pulled: [nope:1b]}\n', "catalog: unknown model 'nope:1b'"),
    ('name: x\nfaults: {leek: {a: 1}}\n', "faults: unknown fault 'leek'"),
])
def test_scenario_file_with_unknown_keys_is_refused_naming_the_key(tmp_path, text, message):
    path = _write(tmp_path, 'unknown.yaml', text)
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(str(path))
    assert str(caught.value).startswith(f'scenario {path}: ')  # the file is named too
