"""The llm_bench node against the real Ollama in a Docker container: two models, a cut load."""

import json
import time

from pathlib import Path

import httpx
import pytest

from shadowhound_llm_bench import real_ollama

from support.real_ollama import PER_RELEASE, container_server
from support.ros_domains import area_domain_id, ros_domain
from support.ros_nodes import (
    BUILD_HINT, NodeProcess, RosTestClient, child_env, interfaces_available, wait_future)
from support.waiting import wait_until

# Nodes of the real tier use ROS domain 97 (set when the node and client start: other areas'
# conftests set theirs at import, in the same process).
DOMAIN_ID = area_domain_id(97)
pytestmark = pytest.mark.skipif(not interfaces_available(), reason=BUILD_HINT)
SMALL, BIG = real_ollama.models.TINY.name, real_ollama.models.BIG.name
EMPTY_WITHIN_S = 10.0
CANCEL_INTO_LOAD_S = 0.4  # the 804 MB model loads in about 1.5 s on this CPU
CONTAINER_LIMIT_BYTES = 3 * 2 ** 30
# This 24 GiB machine is not a robot: a small fixed ROS reserve and safety buffer, so the model
# budget is the container's limit (the robot defaults reserve 16 GiB).
SMALL_MACHINE = {'reserve.fixed_gib': 0.25, 'policy.safety_buffer_gib': 0.25}
# One short task: a long prompt takes minutes on a shared CPU; loads are what is tested here.
SHORT_SUITE = ('name: short\ntasks:\n  - id: hello\n    kind: instruction\n'
               '    prompt: Say hello.\n    checks: [{type: word_count, max: 20, points: 1}]\n')


def listed(base_url):
    """Names /api/ps lists now."""
    with httpx.Client(base_url=base_url, timeout=10.0) as http:
        return [m['name'] for m in http.get('/api/ps').json().get('models') or []]


@pytest.fixture(scope='module', **PER_RELEASE)
def world(request, docker_client, tmp_path_factory):
    """Start a real release in a container, make its models, start a node measuring it."""
    with container_server(docker_client, request.param, name_prefix='realnode',
                          mem_limit_bytes=CONTAINER_LIMIT_BYTES,
                          models=[real_ollama.models.TINY, real_ollama.models.BIG]) as server, \
            ros_domain(DOMAIN_ID):  # read by rclpy.init of the client below
        root = tmp_path_factory.mktemp(f'real-node-{request.param}')
        (root / 'suites').mkdir()
        (root / 'suites' / 'short.yaml').write_text(SHORT_SUITE)
        params = {'ollama_host': server.base_url, 'container.backend': 'docker',
                  'container.name': server.container_name, 'results_dir': str(root / 'results'),
                  'benchmark.repetitions': 1, 'benchmark.num_predict': 2,
                  'benchmark.warmup': False, 'benchmark.num_ctx': 2048,
                  'benchmark.pull_missing': False, 'publish_rate_hz': 2.0,
                  'feedback_period_s': 0.5, 'benchmark.suite_path_dirs': [str(root / 'suites')],
                  **SMALL_MACHINE}
        node = NodeProcess.launch(params=params, log_path=root / 'node.log',
                                  env=child_env(ROS_DOMAIN_ID=str(DOMAIN_ID)))
        client = None
        try:
            node.wait_ready(90.0)
            client = RosTestClient(f'real_node_client_{request.param.replace(".", "_")}')
            yield server, node, client, str(root / 'suites' / 'short.yaml')
        finally:
            if client is not None:
                client.close()
            node.stop()


def reports_left_loaded(result):
    """Return what results.json and summary.md say the run left loaded."""
    folder = Path(result.results_dir)
    end = json.loads((folder / 'results.json').read_text())['residency']['end']
    summary = (folder / 'summary.md').read_text()
    return end, [line for line in summary.splitlines() if line.startswith('- Still loaded')]


def test_the_node_benchmarks_two_real_models_in_the_real_container(world):
    from action_msgs.msg import GoalStatus
    server, node, client, suite = world
    handle = client.send(models=[SMALL, BIG], repetitions=1, no_pull=True, suite=suite,
                         run_name='two_real_models')
    assert handle.accepted
    response = client.result(handle, timeout_s=600.0)
    result = response.result
    assert response.status == GoalStatus.STATUS_SUCCEEDED, (result.status, result.summary)
    assert [m.model for m in result.models] == [SMALL, BIG]
    for model in result.models:
        assert model.status == 'ok', (model.model, model.status, list(result.failure_reasons))
        assert model.memory_peak_gib > 0 and model.cleanup_successful
    # Measured through the container's cgroup: the 804 MB model's runner alone is larger.
    assert result.peak_container_bytes > 800e6, result.peak_container_bytes
    assert list(result.still_loaded_models) == [] and listed(server.base_url) == []
    end, lines = reports_left_loaded(result)
    assert end['still_loaded'] == [] and end['verified']
    assert lines == ['- Still loaded: none (checked in /api/ps)']


def test_a_goal_canceled_during_a_real_load_leaves_nothing_loaded(world):
    from action_msgs.msg import GoalStatus
    server, node, client, suite = world
    wait_until(lambda: listed(server.base_url) == [], 30.0, 'an empty /api/ps before the goal')
    handle = client.send(models=[BIG], repetitions=1, no_pull=True, suite=suite,
                         run_name='cut_load')
    assert handle.accepted
    # The load is under way when the server has started the model's runner process.
    wait_until(lambda: server.runner_pids(), 60.0, 'the runner of the load')
    time.sleep(CANCEL_INTO_LOAD_S)
    assert listed(server.base_url) == [], 'the load ended before the cancel: too late to test'
    canceled_at = time.monotonic()
    wait_future(handle.cancel_goal_async(), 20.0)
    response = client.result(handle, timeout_s=60.0)
    result = response.result
    assert response.status == GoalStatus.STATUS_CANCELED
    assert result.status == 'canceled' and result.error_code == result.CANCELED
    left_s = EMPTY_WITHIN_S - (time.monotonic() - canceled_at)
    wait_until(lambda: listed(server.base_url) == [], max(0.1, left_s),
               f'an empty /api/ps within {EMPTY_WITHIN_S:g} s of the cancel')
    time.sleep(2.0)  # the load that was cut must not turn up later
    assert listed(server.base_url) == [] and not server.runner_pids()
    # When the run ended the cut load may still have been under way inside the server: then it
    # is named with its reason and followed, and the follower gives it up once the server has
    # no runner left for it. Every report says the same.
    end, lines = reports_left_loaded(result)
    assert end['verified']
    assert [m['model'] for m in end['still_loaded']] == list(result.still_loaded_models)
    assert set(result.still_loaded_models) <= {BIG}
    summary = Path(result.results_dir) / 'summary.md'
    if result.still_loaded_models:
        wait_until(lambda: '- Still loaded after following: none' in summary.read_text(), 15.0,
                   'the follower giving the cut load up')
    else:
        assert lines == ['- Still loaded: none (checked in /api/ps)']
    loads = [json.loads(line) for line in
             (Path(result.results_dir) / 'tests.jsonl').read_text().splitlines()
             if '"type": "load"' in line]
    # The load itself was cut: its reply never came.
    assert [(r['ok'], r.get('error_kind')) for r in loads] == [(False, 'canceled')], loads
