"""The node records every run in the history database and names a regression in its result."""

import os
import sqlite3

from pathlib import Path

import httpx
import pytest

from support.ros_domains import area_domain_id
from support.ros_nodes import (
    NodeProcess, READY_TEXT, SMALL_SCENARIO_MEMORY, RosTestClient, interfaces_available,
    needs_ros)
from support.simulators import sim_process_backend

# History node tests use ROS domain 81 (+ the shift), apart from the other areas'.
os.environ['ROS_DOMAIN_ID'] = str(area_domain_id(81))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
pytestmark = needs_ros


@pytest.fixture(scope='module')
def history_node(tmp_path_factory):
    if not interfaces_available():
        pytest.skip('interfaces not built')
    root = tmp_path_factory.mktemp('history_node')
    params = {
        **SMALL_SCENARIO_MEMORY, 'sample_period_s': 0.1, **sim_process_backend('small'),
        'results_dir': str(root / 'results'),
        'history_db': str(root / 'history.sqlite3'),
    }
    node = NodeProcess.launch(params=params, log_path=root / 'node.log')
    node.url = params['ollama_host']
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
