"""Through the real node: a goal naming a file outside the rules is refused and learns nothing."""

import pytest

from support.ros_domains import area_domain_id, ros_domain
from support.ros_nodes import NodeProcess, RosTestClient, child_env, interfaces_available
from support.waiting import wait_until

# Hostile-input node tests use ROS domain ids 85-89 (set when the node and client start: other
# areas' conftests set theirs at import, in the same process).
DOMAIN_ID = area_domain_id(85)

MARKER = 'Zq7NODEMARKER'
GOOD_SUITE = ('name: mine\ntasks:\n  - id: t\n    kind: instruction\n    prompt: hi\n'
              '    checks: [{type: word_count, max: 5, points: 1}]\n')
SMALL_PARAMS = {
    'container.backend': 'api_only', 'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0, 'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125, 'policy.safety_buffer_gib': 0.015625,
    'benchmark.repetitions': 1, 'benchmark.num_predict': 8, 'benchmark.pull_missing': False,
}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    if not interfaces_available():
        pytest.skip('the interfaces are not built')
    from shadowhound_llm_bench.sim.launcher import start_local_simulator

    root = tmp_path_factory.mktemp('files')
    allowed, outside = root / 'allowed', root / 'outside'
    allowed.mkdir()
    outside.mkdir()
    (allowed / 'mine.yaml').write_text(GOOD_SUITE)
    (allowed / 'not_a_suite.yaml').write_text(f'root:{MARKER}:20228:0:99999\n{MARKER}: [\n')
    (outside / 'secret.yaml').write_text(f'{MARKER}: 1\n')
    with ros_domain(DOMAIN_ID):
        sim = start_local_simulator(scenario='small')
        params = dict(SMALL_PARAMS, ollama_host=sim.base_url, results_dir=str(root / 'results'),
                      **{'benchmark.suite_path_dirs': [str(allowed)]})
        node = NodeProcess.launch(params=params, log_path=root / 'node.log',
                                  env=child_env(ROS_DOMAIN_ID=str(DOMAIN_ID)))
        client = None
        try:
            node.wait_ready(60.0)
            client = RosTestClient('hostile_goal_files_client')
            yield client, node, allowed, outside
        finally:
            if client is not None:
                client.close()
            node.stop()
            sim.stop()


@pytest.mark.parametrize('suite, reason', [
    ('/etc/shadow', 'must end in .yaml or .yml'),
    ('outside', 'is outside the folders benchmark.suite_path_dirs allows'),
    ('not_a_suite', 'not valid YAML at line'),
])
def test_a_goal_naming_a_file_is_refused_without_its_content(world, suite, reason):
    client, node, allowed, outside = world
    path = {'outside': str(outside / 'secret.yaml'),
            'not_a_suite': str(allowed / 'not_a_suite.yaml')}.get(suite, suite)
    handle = client.send(models=['qwen2.5:0.5b'], suite=path, dry_run=True)
    # Accepted, then aborted at once with the reason in the result (as Nav2 actions do).
    result = client.result(handle, timeout_s=60.0).result
    assert not result.success and reason in result.error_msg
    wait_until(lambda: reason in node.log(), 10.0, f'log line {reason!r}')
    for text in (node.log(), result.error_msg, result.summary):
        assert MARKER not in text and 'root:' not in text


def test_a_suite_inside_an_allowed_folder_runs(world):
    client, node, allowed, _ = world
    handle = client.send(models=['qwen2.5:0.5b'], suite=str(allowed / 'mine.yaml'), dry_run=True)
    assert handle.accepted
    assert client.result(handle, timeout_s=60.0).result.status == 'planned'
