"""The real node: engine or Ollama unreachable, SIGKILL mid-run then resume, a few bad goals."""

import json
from pathlib import Path

import pytest

from shadowhound_llm_bench.reports.jsonl_log import LOG_NAME, read_records

from reliab_node import (
    NodeProcess, RosClient, child_env, dead_url, needs_ros, wait_until)
from reliab_run import of_type
from support.ros_nodes import ros_test_client

pytestmark = needs_ros
MODELS = ['qwen2.5:0.5b', 'llama3.2:1b']


@pytest.fixture(scope='module')
def ros_client():
    """One rclpy context and action client for this module."""
    with ros_test_client('reliab_client', RosClient) as client:
        yield client


def test_an_unreachable_docker_engine_stops_the_node_at_start_with_the_reason(tmp_path):
    env = child_env(DOCKER_HOST='unix:///tmp/reliab-no-such-docker.sock')
    node = NodeProcess.start(log_path=tmp_path / 'node.log', env=env,
                             params={'container.backend': 'docker',
                                     'container.name': 'reliab-ollama'})
    try:
        code = node.process.wait(timeout=30)
    finally:
        node.stop()
    log = node.log()
    assert code == 1
    assert "not started: cannot reach Docker container 'reliab-ollama'" in log
    assert 'set DOCKER_HOST' in log and 'Traceback' not in log


def test_a_goal_against_an_unreachable_ollama_ends_failed_with_the_reason(ros_client,
                                                                          start_node):
    url = dead_url()
    node = start_node(ollama_host=url)
    node.wait_ready()
    handle = ros_client.send(models=['qwen2.5:0.5b'])
    assert handle.accepted
    result = ros_client.result(handle)
    assert not result.success and result.status == 'failed'
    assert f'Ollama at {url} is not usable' in result.summary
    # The reason reaches the sender: the code, and why the container could not be brought back.
    assert result.error_code == result.OLLAMA_UNAVAILABLE
    assert f'Ollama at {url} is not usable' in result.error_msg
    assert 'restart' in result.error_msg
    assert 'does not answer' in node.log() and 'WARN' in node.log()
    assert result.jsonl_log  # the run's log exists, with the reason in it
    records, bad = read_records(Path(result.jsonl_log))
    assert bad == 0 and of_type(records, 'run_end', status='failed')


@pytest.mark.parametrize('fields, reason', [
    # More bad goals: test/node/test_action_server.py (through the node) and
    # test/node/test_goal_validation.py (the validation itself).
    (dict(order='random'), "unknown order 'random'"),
    (dict(keep_alive='forever'), 'keep_alive must be seconds or a duration'),
    (dict(resume_run_id='20990101T000000Z-nothing'), 'cannot resume'),
])
def test_bad_goals_through_the_node_are_rejected_and_the_node_serves_on(
        ros_client, start_node, fields, reason):
    node = start_node(ollama_host=dead_url())
    node.wait_ready()
    handle = ros_client.send(models=['qwen2.5:0.5b'], **fields)
    assert handle.accepted  # and aborted at once with the reason in the result
    result = ros_client.result(handle, timeout_s=20.0)
    assert result.error_code == result.INVALID_GOAL and reason in result.error_msg
    wait_until(lambda: reason in node.log(), 5.0, f'log line {reason!r}')
    assert node.process.poll() is None


def test_sigkill_mid_run_keeps_the_log_and_the_next_node_resumes(ros_client, start_node,
                                                                 local_sim, tmp_path):
    sim = local_sim({'slow_s': {'llama3.2:1b': 0.4}})
    params = dict(ollama_host=sim.base_url, **{'benchmark.models': MODELS})
    node = start_node(**params)
    node.wait_ready()
    handle = ros_client.send(run_name='killed', order='as_given')
    assert handle.accepted
    log = wait_until(lambda: next((tmp_path / 'results').glob('*/' + LOG_NAME), None), 30.0,
                     'the run log')

    def llama_under_way():
        records, _ = read_records(log)
        return records if of_type(records, 'test', model='llama3.2:1b') else None
    seen = wait_until(llama_under_way, 60.0, 'a finished test of the second model')
    node.kill()

    records, bad = read_records(log)
    assert bad <= 1  # at most the line being written when the kill came
    assert len(of_type(records, 'test')) >= len(of_type(seen, 'test'))  # nothing lost
    assert of_type(records, 'model_end', model='qwen2.5:0.5b')[0]['status'] == 'ok'
    assert not of_type(records, 'run_end')

    sim.stop()
    sim = local_sim()
    node = start_node(**dict(params, ollama_host=sim.base_url))
    node.wait_ready()
    # A new participant: the killed node's action server may linger in the old one's discovery.
    fresh = RosClient()
    try:
        handle = fresh.send(resume_run_id=log.parent.name)
        assert handle.accepted
        result = fresh.result(handle)
    finally:
        fresh.close()
    assert result.success and result.run_id == log.parent.name
    records, bad = read_records(log)
    assert bad <= 1
    assert not of_type(records, 'model_start', model='qwen2.5:0.5b', session=2)
    assert of_type(records, 'model_end', model='llama3.2:1b', session=2, status='ok')
    data = json.loads((log.parent / 'results.json').read_text())
    assert data['run']['status'] == 'ok' and data['run']['sessions'] == 2
    sessions = {m['model']: m['session'] for m in data['models']}
    assert sessions == {'qwen2.5:0.5b': 1, 'llama3.2:1b': 2}
