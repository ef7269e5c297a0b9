"""A RunBenchmark goal, its feedback and its result cross between two processes over DDS."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from foundation_helpers import ACTION_EXCHANGE_DOMAIN_ID

RunBenchmark = pytest.importorskip(
    'shadowhound_llm_bench_interfaces.action',
    reason='interfaces not built: run make bootstrap and source scripts/env.sh').RunBenchmark

SERVER_SCRIPT = Path(__file__).with_name('run_benchmark_echo_server.py')
SERVER_READY_TIMEOUT_S = 30.0
DISCOVERY_TIMEOUT_S = 30.0
GOAL_TIMEOUT_S = 30.0


def wait_for_line(process: subprocess.Popen, expected: str, timeout_s: float) -> None:
    """Read the child's stdout until a line equals expected, or fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    os.set_blocking(process.stdout.fileno(), False)
    buffered = ''
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f'server exited with {process.returncode}: '
                        f'{process.stderr.read().decode(errors="replace")}')
        chunk = process.stdout.read()
        if chunk:
            buffered += chunk.decode(errors='replace')
            if expected in buffered.splitlines():
                return
        time.sleep(0.05)
    pytest.fail(f'server did not print {expected} within {timeout_s} s')


@pytest.fixture
def echo_server(ros_test_env):
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT)], env=ros_test_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_line(process, 'READY', SERVER_READY_TIMEOUT_S)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


@pytest.fixture
def client_node():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ACTION_EXCHANGE_DOMAIN_ID)
    node = Node('run_benchmark_test_client', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def spin_until_done(executor, future, timeout_s: float) -> None:
    """Spin until future completes; fail after timeout_s."""
    executor.spin_until_future_complete(future, timeout_sec=timeout_s)
    assert future.done(), f'no answer within {timeout_s} s'


def test_goal_feedback_and_result_cross_processes(echo_server, client_node):
    node, executor = client_node
    client = ActionClient(node, RunBenchmark, '/llm_bench/run_benchmark')
    assert client.wait_for_server(timeout_sec=DISCOVERY_TIMEOUT_S), 'action server not found'

    feedback_seen = []
    goal = RunBenchmark.Goal(models=['phi4:14b', 'llama3.3:70b'], preset='adaptive',
                             run_name='foundation')
    send_future = client.send_goal_async(
        goal, feedback_callback=lambda message: feedback_seen.append(message.feedback))
    spin_until_done(executor, send_future, GOAL_TIMEOUT_S)
    goal_handle = send_future.result()
    assert goal_handle.accepted

    result_future = goal_handle.get_result_async()
    spin_until_done(executor, result_future, GOAL_TIMEOUT_S)
    result = result_future.result().result

    assert result.success
    assert result.run_id == 'echo-foundation'
    assert [model.model for model in result.models] == ['phi4:14b', 'llama3.3:70b']
    assert all(model.status == 'ok' for model in result.models)
    assert result.peak_container_gib == pytest.approx(3.0)
    assert result.summary == '2 model(s) echoed'

    assert feedback_seen, 'no feedback arrived'
    assert {fb.model for fb in feedback_seen} <= {'phi4:14b', 'llama3.3:70b'}
    last = feedback_seen[-1]
    assert last.model_count == 2
    assert last.phase == 'testing'
    assert last.status.startswith('adaptive: testing ')
    assert last.container_working_set_bytes == 3 * 2 ** 30
    client.destroy()
