"""Through the node on the thor simulator: cancel, deactivate or SIGINT during a 70B load."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.ros_domains import area_domain_id

# ROS domain 88 for the nodes started here (no other test area uses it).
os.environ['ROS_DOMAIN_ID'] = str(area_domain_id(88))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from support.ollama_ps import listed  # noqa: E402
from support.ros_nodes import (BUILD_HINT, REPO, NodeProcess,  # noqa: E402
                               interfaces_available, ros_test_client, wait_future)
from support.waiting import wait_until  # noqa: E402
from test_nothing_left_behind import wait_empty  # noqa: E402

from shadowhound_llm_bench.common.net import free_port  # noqa: E402
from shadowhound_llm_bench.common.process_group import (  # noqa: E402
    start_process_group, stop_process_group)
from shadowhound_llm_bench.core.decider.residency import left_loaded  # noqa: E402
from shadowhound_llm_bench.demo import _node_parameters, _raw_node_parameters  # noqa: E402

pytestmark = pytest.mark.skipif(not interfaces_available(), reason=BUILD_HINT)
LOAD_MODEL = 'llama3.3:70b'  # about 3 s to load on the thor simulator


@pytest.fixture(scope='module')
def ros_client():
    with ros_test_client('leftovers_test_client') as client:
        yield client


@pytest.fixture
def thor_sim(tmp_path):
    """Start the thor simulator as a server of its own: it outlives the node, as Ollama does."""
    port = free_port()
    log = open(tmp_path / 'sim.log', 'wb')
    sim = start_process_group([sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario',
                               'thor', '--port', str(port), '--quiet'], cwd=str(REPO),
                              stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    try:
        wait_until(lambda: listed(url) is not None, 30.0, 'the simulator')
        yield url
    finally:
        stop_process_group(sim, grace_s=5.0)
        log.close()


def _thor_node(tmp_path, url, *, lifecycle=False):
    port = int(url.rsplit(':', 1)[1])
    params = _node_parameters(_raw_node_parameters(), backend='api_only', port=port,
                              results_dir=tmp_path / 'results', preset='default',
                              repetitions=1)
    # The scenario's fixed ROS reserve (16 GiB / 64): the test's own processes must not
    # decide whether the 70B fits (0.64 GiB of 0.65).
    params.update({'benchmark.pull_missing': False, 'publish_rate_hz': 2.0,
                   'feedback_period_s': 0.5, 'reserve.fixed_gib': 0.25})
    node = NodeProcess.launch(params=params, log_path=tmp_path / 'node.log',
                              lifecycle=lifecycle)
    node.ollama_host = url
    return node


@pytest.fixture
def thor_node(tmp_path, thor_sim):
    node = _thor_node(tmp_path, thor_sim)
    node.wait_ready(90.0)
    yield node
    node.stop()


def _start_load(ros_client):
    """Send a goal and return its handle once the 70B load has been under way ~1 s."""
    feedback = []
    handle = ros_client.send(feedback=feedback, models=[LOAD_MODEL], repetitions=1,
                             no_pull=True)
    assert handle.accepted
    wait_until(lambda: any(f.phase == 'loading' and 'attempt' in f.status for f in feedback),
               60.0, 'the load to start')
    time.sleep(1.0)
    return handle


def _reports_say(result):
    """Return the still-loaded models results.json and summary.md name, and the end record."""
    folder = Path(result.results_dir)
    end = json.loads((folder / 'results.json').read_text())['residency']['end']
    summary = (folder / 'summary.md').read_text()
    in_md = [line.split('- Still loaded: ', 1)[1].split(' — ')[0]
             for line in summary.splitlines()
             if line.startswith('- Still loaded: ') and 'none (checked' not in line]
    return [m for m, _ in left_loaded(end)], in_md, end


def test_cancel_during_a_70b_load_leaves_ps_empty_and_reports_agree(ros_client, thor_node):
    handle = _start_load(ros_client)
    canceled_at = time.monotonic()
    wait_future(handle.cancel_goal_async(), 20.0)
    result = ros_client.result(handle, 60.0).result
    assert result.status == 'canceled'
    in_json, in_md, end = _reports_say(result)
    assert list(result.still_loaded_models) == in_json == in_md
    assert end['cleanup'] in ('verified', 'followed')
    wait_empty(thor_node.ollama_host)  # watched for 12 s: the cut load came and went
    assert time.monotonic() - canceled_at < 60.0


def test_sigint_to_the_node_during_a_load_leaves_ps_empty(ros_client, thor_node):
    _start_load(ros_client)
    thor_node.interrupt()
    # The node follows the cut load until it ends and unloads it before it exits.
    assert thor_node.wait(60.0) == 0
    assert 'interrupted: shutting down' in thor_node.log()
    wait_empty(thor_node.ollama_host)


def test_deactivate_during_a_load_leaves_ps_empty_and_reports_agree(
        ros_client, tmp_path, thor_sim):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    node = _thor_node(tmp_path, thor_sim, lifecycle=True)
    try:
        node.wait_for_text('lifecycle node unconfigured', 60.0)
        client = ros_client.node.create_client(ChangeState, '/llm_bench/change_state')
        assert client.wait_for_service(timeout_sec=30.0)

        def transition(tid):
            request = ChangeState.Request(transition=Transition(id=tid))
            return wait_future(client.call_async(request), 120.0).success
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert transition(Transition.TRANSITION_ACTIVATE)
        handle = _start_load(ros_client)
        assert transition(Transition.TRANSITION_DEACTIVATE)
        result = ros_client.result(handle, 60.0).result
        in_json, in_md, _ = _reports_say(result)
        assert list(result.still_loaded_models) == in_json == in_md
        wait_empty(node.ollama_host)
        ros_client.node.destroy_client(client)
    finally:
        node.stop()
