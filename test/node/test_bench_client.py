"""The BenchmarkClient class for mission code, and llm_bench_client's Ctrl-C (partial result)."""

import os
import signal
import subprocess
import sys

import pytest

from node_helpers import REPO, child_env, needs_ros, wait_until

pytestmark = needs_ros


@pytest.fixture
def bench_client():
    """Hold a BenchmarkClient in its own rclpy context, as mission code would."""
    import rclpy
    from shadowhound_llm_bench.ros.bench_client import BenchmarkClient
    context = rclpy.Context()
    rclpy.init(context=context)
    client = BenchmarkClient(node_name='mission_bench_client', context=context)
    yield client
    client.destroy_node()
    rclpy.try_shutdown(context=context)


def test_a_run_through_the_client_class_gives_feedback_memory_and_result(bench_client,
                                                                         bench_node):
    from shadowhound_llm_bench.ros.bench_client import TaskResult
    assert bench_client.wait_for_server(20.0)
    assert bench_client.start(models=['qwen2.5:0.5b'], repetitions=1)
    result = bench_client.wait(120.0)
    assert result is not None and result.status == 'ok'
    assert bench_client.result_kind() is TaskResult.SUCCEEDED
    assert bench_client.feedback() is not None and bench_client.feedback().phase == 'done'
    bench_client.spin(1.0)
    memory = bench_client.memory()
    assert memory is not None and memory.model_budget_bytes > 0


def test_cancel_through_the_client_class_returns_the_partial_result(bench_client, bench_node):
    from shadowhound_llm_bench.ros.bench_client import TaskResult
    assert bench_client.wait_for_server(20.0)
    assert bench_client.start(models=['qwen2.5:0.5b', 'llama3.2:1b'], repetitions=3,
                              run_name='client_cancel')
    while not bench_client.is_done():
        feedback = bench_client.feedback()
        if feedback is not None and feedback.phase == 'testing':
            break
    result = bench_client.cancel(wait_result_s=60.0)
    assert result is not None
    assert bench_client.result_kind() is TaskResult.CANCELED
    assert result.status == 'canceled' and result.error_code == result.CANCELED
    assert 'client_cancel' in result.run_id and os.path.isfile(result.report_markdown)
    # What Ollama held at the end is named with its reason (a model being unloaded is followed
    # until /api/ps drops it), or "?" with the reason when /api/ps did not answer.
    assert set(result.still_loaded_models) <= {'?', 'qwen2.5:0.5b', 'llama3.2:1b'}
    assert all(result.still_loaded_reasons)


def test_a_bad_field_name_is_refused_before_sending(bench_client):
    with pytest.raises(ValueError, match="no field 'modles'"):
        bench_client.make_goal(modles=['x'])


def test_llm_bench_client_prints_the_partial_result_on_ctrl_c(bench_node, tmp_path):
    log_path = tmp_path / 'client.log'
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            [sys.executable, '-m', 'shadowhound_llm_bench.ros.client', 'qwen2.5:0.5b',
             'llama3.2:1b', '--repetitions', '3', '--run-name', 'ctrl_c'],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), env=child_env(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            start_new_session=True)
    try:
        wait_until(lambda: ' testing ' in log_path.read_text(), 60.0, 'a testing line')
        os.kill(process.pid, signal.SIGINT)
        code = process.wait(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    out = log_path.read_text()
    assert code == 4, out
    assert 'canceling' in out and ': canceled' in out
    assert 'error 6:' in out  # CANCELED, with the run's message
    assert 'report:' in out and 'Traceback' not in out
