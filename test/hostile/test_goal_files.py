"""Files from goals: suites by name, paths only under allowed folders, errors never quote files."""

import os
from pathlib import Path

import pytest

from shadowhound_llm_bench.common.bounded_yaml import (
    MAX_YAML_FILE_BYTES, BoundedYamlError, parse_yaml_text, read_yaml_file)
from shadowhound_llm_bench.core.settings.goal_validation import (GoalRejected, GoalRequest,
                                                                 resolve_goal)
from shadowhound_llm_bench.core.settings.node_settings import NodeSettings
from shadowhound_llm_bench.core.settings.ros_args import params_file_error
from shadowhound_llm_bench.core.runs.suite import SuiteError, load_suite

SECRET = 'root:$6$Zq9SECRETsalt$hash:20228:0:99999:7'
GOOD_SUITE = ('name: mine\ntasks:\n  - id: t\n    kind: instruction\n    prompt: hi\n'
              '    checks: [{type: word_count, max: 5, points: 1}]\n')


@pytest.fixture
def folders(tmp_path):
    allowed = tmp_path / 'allowed'
    outside = tmp_path / 'outside'
    allowed.mkdir()
    outside.mkdir()
    (allowed / 'mine.yaml').write_text(GOOD_SUITE)
    (outside / 'secret.yaml').write_text(f'{SECRET}\n')
    (outside / 'good.yaml').write_text(GOOD_SUITE)
    return allowed, outside


def _settings(*allowed):
    return NodeSettings(values={'benchmark.suite_path_dirs': [str(a) for a in allowed] or ['']})


def _reject(suite, settings):
    with pytest.raises(GoalRejected) as info:
        resolve_goal(GoalRequest(suite=suite), settings)
    return str(info.value)


def test_a_goal_cannot_name_a_system_file_and_learns_nothing_of_it():
    for path in ('/etc/shadow', '/etc/passwd', '/proc/self/environ'):
        message = _reject(path, _settings())
        assert 'root' not in message and 'must end in .yaml' in message


def test_by_default_no_path_is_accepted_even_a_valid_suite(folders):
    allowed, outside = folders
    message = _reject(str(allowed / 'mine.yaml'), _settings())
    assert 'accepted only by name' in message


def test_a_path_outside_the_allowed_folders_is_refused_before_it_is_looked_at(folders):
    allowed, outside = folders
    settings = _settings(allowed)
    existing = _reject(str(outside / 'good.yaml'), settings)
    missing = _reject(str(outside / 'nothing_here.yaml'), settings)
    # The same refusal whether or not the file exists: no probing of the file system.
    assert 'is outside the folders' in existing and 'is outside the folders' in missing
    # Nor does the refusal name the folders that are allowed.
    assert str(allowed) not in existing and str(allowed) not in missing
    assert _reject(str(allowed / '..' / 'outside' / 'good.yaml'), settings).count('outside')


def test_a_symlink_inside_an_allowed_folder_cannot_lead_outside(folders):
    allowed, outside = folders
    os.symlink(outside / 'good.yaml', allowed / 'link.yaml')
    message = _reject(str(allowed / 'link.yaml'), _settings(allowed))
    assert 'is outside the folders' in message


def test_a_path_inside_an_allowed_folder_loads(folders):
    allowed, _ = folders
    settings = _settings(allowed)
    goal = resolve_goal(GoalRequest(suite=str(allowed / 'mine.yaml')), settings)
    suite = load_suite(goal.suite, allowed_path_dirs=[str(allowed)])
    assert suite.name == 'mine'


def test_the_suite_parameter_obeys_the_same_rule(folders):
    allowed, outside = folders
    settings = NodeSettings(values={'benchmark.suite': str(outside / 'good.yaml')})
    with pytest.raises(GoalRejected, match='accepted only by name'):
        resolve_goal(GoalRequest(), settings)


def test_load_suite_with_allowed_folders_refuses_outside_paths(folders):
    allowed, outside = folders
    with pytest.raises(SuiteError, match='is outside the folders'):
        load_suite(str(outside / 'secret.yaml'), allowed_path_dirs=[str(allowed)])
    with pytest.raises(SuiteError, match='accepted only by name'):
        load_suite(str(allowed / 'mine.yaml'), allowed_path_dirs=[])


@pytest.mark.parametrize('content', [
    f'{SECRET}\n',                                        # a line of /etc/shadow: a plain string
    f'a: b\n{SECRET}: [\n',                              # broken YAML quoting the line
    f'name: x\n{SECRET}: 1\ntasks: []\n',                # an unknown key
    f'name: x\ntasks:\n  - id: "{SECRET}"\n    kind: poem\n',  # a value in a task
    f'name: x\ntasks:\n  - id: t\n    kind: instruction\n    prompt: p\n'
    f'    checks: [{{type: "{SECRET}", points: 1}}]\n',   # an unknown check type
    f'name: x\ntasks:\n  - id: t\n    kind: json\n    prompt: p\n    schema: {{"{SECRET}": 1}}\n'
    f'    checks: [{{type: json_found, points: 1}}]\n',    # a schema keyword
    f'x: *{SECRET[:4]}\n',                                  # an undefined alias
    f'"{SECRET}\n',                                        # an unterminated string
    f'\t{SECRET}\n',                                       # a tab PyYAML quotes
])
def test_no_error_quotes_the_content_of_a_file_it_cannot_use(tmp_path, content):
    path = tmp_path / 'not_a_suite.yaml'
    path.write_text(content)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert message.startswith(f'{path}: ')
    message = message[len(f'{path}: '):]  # the file's own name may say anything
    for fragment in ('root', 'SECRET', '20228', '$6$'):
        assert fragment not in message, message


def test_yaml_bombs_deep_nesting_and_big_files_are_refused_by_rule(tmp_path):
    laughs = 'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: &c [*b, *b]\n'
    with pytest.raises(BoundedYamlError, match='aliases'):
        parse_yaml_text(laughs)
    with pytest.raises(BoundedYamlError, match='nested deeper than 32 levels'):
        parse_yaml_text('[' * 5000 + ']' * 5000)
    big = tmp_path / 'big.yaml'
    big.write_bytes(b'#' * (MAX_YAML_FILE_BYTES + 1))
    with pytest.raises(BoundedYamlError, match=f'larger than {MAX_YAML_FILE_BYTES} bytes'):
        read_yaml_file(big)
    binary = tmp_path / 'binary.yaml'
    binary.write_bytes(b'\xff\xfe' + SECRET.encode())
    with pytest.raises(BoundedYamlError, match='not UTF-8') as info:
        read_yaml_file(binary)
    assert 'root' not in str(info.value).replace(str(binary), '')


def test_suite_sizes_are_bounded(tmp_path):
    task = ('  - id: t{i}\n    kind: instruction\n    prompt: hi\n'
            '    checks: [{{type: word_count, max: 5, points: 1}}]\n')
    path = tmp_path / 'many.yaml'
    path.write_text('name: many\ntasks:\n' + ''.join(task.format(i=i) for i in range(201)))
    with pytest.raises(SuiteError, match='more than 200 tasks'):
        load_suite(str(path))
    path.write_text(GOOD_SUITE.replace('prompt: hi', 'prompt: ' + 'w' * 70000))
    with pytest.raises(SuiteError, match="'prompt' is longer than 65536 characters"):
        load_suite(str(path))


def test_a_params_file_error_names_the_place_not_the_content(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(f'/**:\n  ros__parameters:\n    x: [1\n{SECRET}\n')
    message = params_file_error(str(path)).replace(str(path), '<file>')
    assert message.startswith('parameters file <file> is not valid YAML at line ')
    assert 'root' not in message and 'SECRET' not in message
    path.write_text(f'/**:\n  ros__parameters: "{SECRET}"\n')
    message = params_file_error(str(path))
    assert "'ros__parameters' must hold name: value pairs, got a str" in message
    assert 'SECRET' not in message


def test_results_dir_and_allowed_suite_folders_cannot_change_at_run_time():
    from shadowhound_llm_bench.core.settings.node_settings import SPECS_BY_NAME
    assert SPECS_BY_NAME['results_dir'].read_only
    assert SPECS_BY_NAME['benchmark.suite_path_dirs'].read_only
    assert Path(SPECS_BY_NAME['benchmark.suite_path_dirs'].default[0]) == Path('')


def test_a_huge_parameter_value_is_quoted_short_in_its_error():
    from shadowhound_llm_bench.core.settings.node_settings import NodeSettingsError
    with pytest.raises(NodeSettingsError) as info:
        NodeSettings(values={'benchmark.models': ['\x1b[2J' + 'm' * 100000]})
    message = str(info.value)
    assert len(message) < 400 and '\x1b' not in message and 'more characters' in message


def test_a_scenario_yaml_error_names_the_place_not_the_content(tmp_path):
    from shadowhound_llm_bench.sim.scenario import ScenarioError, load_scenario
    path = tmp_path / 'broken.yaml'
    path.write_text(f'name: x\n{SECRET}: [\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    message = str(info.value).replace(str(path), '<file>')
    assert message.startswith('cannot read scenario <file>: not valid YAML at line ')
    assert 'SECRET' not in message


def test_allowed_suite_folders_must_be_absolute():
    from shadowhound_llm_bench.core.settings.node_settings import NodeSettingsError
    with pytest.raises(NodeSettingsError, match="'suites' must be an absolute folder"):
        NodeSettings(values={'benchmark.suite_path_dirs': ['suites']})
    assert NodeSettings(values={'benchmark.suite_path_dirs': ['/srv/suites', '~/suites']})
