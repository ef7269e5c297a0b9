"""Every run starts from what Ollama really holds and ends with what it loaded unloaded."""

import json
import urllib.request

import pytest
from action_msgs.msg import GoalStatus

from reliab_node import NodeProcess, RosClient, needs_ros, wait_until

pytestmark = needs_ros
MODEL = 'qwen2.5:0.5b'
OTHER = 'smollm2:135m'  # fits beside MODEL in the small scenario's container (pulled first)


def loaded(base_url):
    """Return the names /api/ps lists now."""
    with urllib.request.urlopen(base_url + '/api/ps', timeout=5) as reply:
        return [m['name'] for m in json.load(reply)['models']]


def _post(base_url, path, body):
    request = urllib.request.Request(base_url + path, data=json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return reply.read()


def load_forever(base_url, model):
    """Load a model with keep_alive -1, as a client that never unloads would."""
    _post(base_url, '/api/generate', {'model': model, 'prompt': '', 'keep_alive': -1,
                                      'stream': False})


@pytest.mark.parametrize('preset', ['default', 'fast', 'conservative', 'adaptive'])
def test_the_last_model_is_unloaded_and_verified_in_every_preset(ros_client, start_node,
                                                                 local_sim, preset):
    sim = local_sim()
    node = start_node(ollama_host=sim.base_url)
    node.wait_ready()
    # One model: fast and adaptive keep a model loaded after it; the end of the run may not.
    handle = ros_client.send(models=[MODEL], preset=preset)
    assert handle.accepted
    result = ros_client.result(handle, timeout_s=120.0)
    assert result.status == 'ok', result.summary
    assert list(result.still_loaded_models) == [], list(result.still_loaded_reasons)
    assert loaded(sim.base_url) == []
    report = open(result.report_markdown).read()
    assert 'Still loaded: none (checked in /api/ps)' in report


def test_a_killed_nodes_model_is_unloaded_before_the_next_run_measures_anything(
        ros_client, start_node, small_container):
    # A container whose memory the node measures (API only measures nothing: unverified).
    sim = small_container({'slow_s': {MODEL: 0.4}})
    docker = {'container.backend': 'docker', 'container.name': sim.name}
    first = start_node(ollama_host=sim.base_url, **{'benchmark.repetitions': 3}, **docker)
    first.wait_ready()
    handle = ros_client.send(models=[MODEL], run_name='killed')
    assert handle.accepted
    wait_until(lambda: MODEL in loaded(sim.base_url), 60.0, f'{MODEL} loaded by the first node')
    first.kill()  # SIGKILL: no cleanup of any kind
    assert MODEL in loaded(sim.base_url)

    second = start_node(ollama_host=sim.base_url, **docker)
    second.wait_ready()
    assert f'models already loaded in Ollama: {MODEL}' in second.log()
    # A new DDS participant: the killed node's action server stays in the old one's discovery
    # until its lease runs out, and goal requests would go to it too.
    fresh = RosClient()
    try:
        wait_until(lambda: _diagnostic_loaded(fresh) == '1', 10.0,
                   'loaded_models 1 on /diagnostics while idle')
        handle = fresh.send(models=[MODEL])
        assert handle.accepted
        result = fresh.result(handle, timeout_s=120.0)
    finally:
        fresh.close()
    assert result.status == 'ok', result.summary
    assert list(result.found_loaded_models) == [MODEL]
    assert result.found_loaded_action == 'unloaded'
    model = result.models[0]
    # Measured from an empty container: the footprint is the model's, not ~0.
    assert model.measured_footprint_gib > 0.5 * model.predicted_footprint_gib > 0
    assert list(result.still_loaded_models) == [] and loaded(sim.base_url) == []


def _diagnostic_loaded(ros_client):
    for array in ros_client.diagnostics():
        for status in array.status:
            for value in status.values:
                if value.key == 'loaded_models':
                    return value.value
    return None


def test_another_clients_model_is_reported_still_loaded_with_its_reason(ros_client,
                                                                        start_node, local_sim):
    sim = local_sim()
    _post(sim.base_url, '/api/pull', {'model': OTHER, 'stream': False})
    node = start_node(ollama_host=sim.base_url, **{'benchmark.repetitions': 2})
    node.wait_ready()
    feedback = []
    handle = ros_client.send(feedback=feedback, models=[MODEL])
    assert handle.accepted
    # Loaded by someone else once the run has begun testing: the run must leave it alone.
    wait_until(lambda: any(f.phase == 'testing' for f in feedback), 60.0, 'testing feedback')
    load_forever(sim.base_url, OTHER)
    result = ros_client.result(handle, timeout_s=120.0)
    assert result.status == 'ok', result.summary
    assert OTHER in loaded(sim.base_url) and MODEL not in loaded(sim.base_url)
    reasons = dict(zip(result.still_loaded_models, result.still_loaded_reasons))
    assert list(reasons) == [OTHER]
    assert 'another client' in reasons[OTHER]
    assert f'still loaded: {OTHER}' in result.summary


def _goal_on_a_fresh_node(ros_client, start_node, local_sim, models):
    """Send the models (no pull) to a node over a fresh simulator; the result response."""
    sim = local_sim()
    node = start_node(ollama_host=sim.base_url)
    node.wait_ready()
    handle = ros_client.send(models=models, no_pull=True)
    assert handle.accepted
    return RosClient.__mro__[1].result(ros_client, handle, 60.0)


def test_a_run_with_nothing_tested_is_failed_not_success(ros_client, start_node, local_sim):
    response = _goal_on_a_fresh_node(ros_client, start_node, local_sim, ['nosuchmodel:1b'])
    result = response.result
    assert response.status == GoalStatus.STATUS_ABORTED
    assert result.status == 'failed' and not result.success
    assert result.error_code == result.MODELS_NOT_TESTED
    assert 'no model completed its tests' in result.error_msg
    assert list(result.skipped_models) == ['nosuchmodel:1b'] or \
        list(result.failed_models) == ['nosuchmodel:1b']


def test_a_partial_run_succeeds_but_is_not_success(ros_client, start_node, local_sim):
    response = _goal_on_a_fresh_node(ros_client, start_node, local_sim,
                                     [MODEL, 'nosuchmodel:1b'])
    result = response.result
    assert response.status == GoalStatus.STATUS_SUCCEEDED
    assert result.status == 'partial' and not result.success
    assert result.error_code == result.MODELS_NOT_TESTED
    assert 'nosuchmodel:1b' in result.error_msg or 'not every model' in result.error_msg


def test_start_up_with_the_container_stopped_warns_and_a_goal_starts_it(
        ros_client, start_node, small_container):
    sim = small_container()
    sim.container.stop(timeout=5)
    node = start_node(ollama_host=sim.base_url, **{'container.backend': 'docker',
                                                   'container.name': sim.name})
    node.wait_ready()
    log = node.log()
    assert f"container '{sim.name}' is stopped" in log and 'WARN' in log
    assert f'docker start {sim.name}' in log
    level, message = wait_until(lambda: _container_diagnostic(ros_client), 10.0,
                                'the container diagnostic')
    assert level == 2 and f'Fix: start it (docker start {sim.name})' in message

    handle = ros_client.send(models=[MODEL])
    assert handle.accepted
    result = ros_client.result(handle, timeout_s=120.0)
    assert result.status == 'ok', result.summary
    sim.container.reload()
    assert sim.container.status == 'running'
    report = open(result.report_markdown).read()
    assert 'the container was not running and was started' in report
    level, message = wait_until(lambda: _container_diagnostic(ros_client, running=True), 15.0,
                                'the container diagnostic back to OK')
    assert level == 0


def _container_diagnostic(ros_client, running=False):
    for array in ros_client.diagnostics():
        for status in array.status:
            if status.name.endswith('Ollama container'):
                level = status.level[0] if isinstance(status.level, bytes) else status.level
                if running and level != 0:
                    return None
                return level, status.message
    return None


def test_the_node_and_the_cli_share_one_state_folder(ros_client, small_container, tmp_path):
    # Node = CLI: what the node measures (footprints, unload durations) the CLI then uses.
    import subprocess
    import sys
    from reliab_node import child_env
    sim = small_container()  # a container whose memory is measured, so footprints are kept
    env = child_env(XDG_CACHE_HOME=str(tmp_path / 'xdg'))
    node = NodeProcess.start(log_path=tmp_path / 'node.log', env=env,
                             params={'results_dir': str(tmp_path / 'results'),
                                     'ollama_host': sim.base_url, 'state_dir': '',
                                     'container.backend': 'docker',
                                     'container.name': sim.name})
    try:
        node.wait_ready()
        handle = ros_client.send(models=[MODEL])
        assert handle.accepted
        result = ros_client.result(handle, timeout_s=120.0)
        assert result.status == 'ok', result.summary
    finally:
        node.stop()
    state = tmp_path / 'xdg' / 'shadowhound_llm_bench'
    assert (state / 'footprints.json').is_file()
    costs = json.loads((state / 'management_costs.json').read_text())
    (kept,) = costs['servers'].values()  # kept for this server: the container, its version
    assert kept['unload_s'], costs  # the node's unloads were measured and kept
    assert kept['server']['backend'] == 'docker' and kept['server']['target'] == sim.name
    plan = subprocess.run(
        [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--host', sim.base_url,
         '--container', sim.name, '--models', MODEL, '--dry-run',
         '--results-dir', str(tmp_path / 'cli')],
        env=env, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert '(measured)' in plan.stdout, plan.stdout
