"""The node records every run in the history database and names a regression in its result."""

import os
import socket
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test/ros_node_support.py

# History node tests use ROS domain 81 (+ the shift), apart from the other areas'.
os.environ['ROS_DOMAIN_ID'] = str((81 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))) % 232)
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from ros_node_support import (  # noqa: E402
    NodeProcess, READY_TEXT, RosTestClient, interfaces_available, needs_ros)

pytestmark = needs_ros


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def history_node(tmp_path_factory):
    if not interfaces_available():
        pytest.skip('interfaces not built')
    root = tmp_path_factory.mktemp('history_node')
    port = _free_port()
    params = {
        # config/scenarios/small.yaml node_parameters, in GiB (1/8 of a small 8 GiB machine).
        'simulation.memory_scale': 0.125, 'simulation.total_gib': 1.0,
        'simulation.system_reserve_gib': 0.125, 'reserve.fixed_gib': 0.03125,
        'policy.safety_buffer_gib': 0.015625, 'sample_period_s': 0.1,
        'container.backend': 'process',
        'container.command': [sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario',
                              'small', '--port', str(port), '--quiet'],
        'ollama_host': f'http://127.0.0.1:{port}',
        'results_dir': str(root / 'results'),
        'history_db': str(root / 'history.sqlite3'),
    }
    node = NodeProcess.launch(params=params, log_path=root / 'node.log')
    node.url = f'http://127.0.0.1:{port}'
    node.db = root / 'history.sqlite3'
    try:
        node.wait_for_text(READY_TEXT, 30.0)
        client = RosTestClient('history_test_client')
        try:
            yield node, client
        finally:
            client.close()
    finally:
        node.stop()


def test_the_result_summary_names_a_regression_beyond_noise(history_node):
    node, client = history_node
    first = client.result(client.send(models=['qwen2.5:0.5b'], repetitions=2)).result
    assert first.status == 'ok', first.summary
    assert 'history: no earlier comparable run' in first.summary
    httpx.post(f'{node.url}/sim/faults', timeout=5,
               json={'decode_slowdown': {'after_cycles': 0, 'fraction': 0.25}}).raise_for_status()
    second = client.result(client.send(models=['qwen2.5:0.5b'], repetitions=2)).result
    assert second.status == 'ok', second.summary
    assert (f'history: regression: qwen2.5:0.5b: decode tok/s slower than run {first.run_id} '
            'by 25 %') in second.summary
    assert 'beyond noise' in Path(second.report_markdown).read_text()
    with sqlite3.connect(node.db) as conn:
        assert sorted(r[0] for r in conn.execute('SELECT run_id FROM runs')) == sorted(
            [first.run_id, second.run_id])
