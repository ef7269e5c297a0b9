"""The node on the simulated Thor: ~/platform_status, its /diagnostics status, the result text."""

import os
import sys
import time

import pytest

from ros_node_support import (
    BUILD_HINT, READY_TEXT, NodeProcess, RosTestClient, interfaces_available, wait_until,
)

pytestmark = pytest.mark.skipif(not interfaces_available(), reason=BUILD_HINT)

PARAMS = {
    # config/scenarios/small.yaml node_parameters (as the node tests use them).
    'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0,
    'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.models': ['qwen2.5:0.5b'],
    'benchmark.repetitions': 1,
    'benchmark.warmup': False,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'diagnostics_period_s': 0.5,
    'platform.sample_hz': 20.0,
}


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def thor_node(tmp_path_factory):
    """Start the node; its process backend runs the simulator writing a fake Thor tree."""
    root = str(tmp_path_factory.mktemp('thor'))
    port = _free_port()
    params = dict(PARAMS)
    params.update({
        'container.backend': 'process',
        'container.command': [sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario',
                              'small', '--port', str(port), '--quiet', '--platform-root', root],
        'ollama_host': f'http://127.0.0.1:{port}',
        'results_dir': str(tmp_path_factory.mktemp('results')),
        'platform.sysfs_root': root,
    })
    node = NodeProcess.launch(params=params,
                              log_path=tmp_path_factory.mktemp('logs') / 'node.log')
    try:
        node.wait_for_text(READY_TEXT, 60.0)
        node.root = root
        yield node
    finally:
        node.stop()


@pytest.fixture(scope='module')
def client():
    ros = RosTestClient('platform_test_client')
    yield ros
    ros.close()


def _platform_statuses(client, seconds):
    from diagnostic_msgs.msg import DiagnosticArray
    found = []

    def keep(array):
        found.extend(s for s in array.status if s.name == 'llm_bench: platform')
    subscription = client.node.create_subscription(DiagnosticArray, '/diagnostics', keep, 10)
    try:
        wait_until(lambda: len(found) >= 2, seconds, 'platform diagnostics')
    finally:
        client.node.destroy_subscription(subscription)
    return found


def test_platform_status_topic_carries_power_temperature_clock_and_mode(thor_node, client):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from shadowhound_llm_bench_interfaces.msg import PlatformStatus
    messages = []
    subscription = client.node.create_subscription(
        PlatformStatus, '/llm_bench/platform_status', messages.append,
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    try:
        wait_until(lambda: len(messages) >= 3, 20.0, 'PlatformStatus messages')
    finally:
        client.node.destroy_subscription(subscription)
    last = messages[-1]
    assert last.measured and last.source == PlatformStatus.SOURCE_SYSFS
    assert last.power_w == pytest.approx(25.0, abs=1.0)  # the fake Thor idles at 25 W
    assert 30.0 < last.temperature_c < 100.0
    assert last.gpu_freq_max_mhz == pytest.approx(1575.0)
    assert last.power_mode == 'MAXN' and last.power_mode_is_max == 1
    assert last.clocks_locked == 1 and last.power_mode_id == 0
    assert last.module == 'NVIDIA Jetson AGX Thor Developer Kit' and last.header.frame_id == ''
    assert abs(last.sample_wall_time_s - time.time()) < 10.0
    statuses = _platform_statuses(client, 20.0)
    assert statuses[-1].level == b'\x00'
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert values['source'] == 'sysfs' and values['power_mode'] == 'MAXN'


def test_the_result_carries_machine_and_energy_and_a_power_mode_drop_warns(thor_node, client):
    handle = client.send(models=['qwen2.5:0.5b'], repetitions=1)
    assert handle.accepted
    result = client.result(handle).result
    assert 'machine: NVIDIA Jetson AGX Thor Developer Kit' in result.summary
    assert result.models[0].j_per_token > 0.0
    assert 'J/token' in result.summary
    state = os.path.join(thor_node.root, 'var/lib/ollama_sim/power_mode')
    with open(state + '.tmp', 'w') as f:
        f.write('40W\n3\n')
    os.replace(state + '.tmp', state)
    plan = client.result(client.send(models=['qwen2.5:0.5b'], dry_run=True)).result
    assert 'WARNING: power mode is 40W' in plan.summary
    time.sleep(1.0)
    statuses = _platform_statuses(client, 20.0)
    assert statuses[-1].level == b'\x01'
    assert 'not MAXN' in statuses[-1].message
