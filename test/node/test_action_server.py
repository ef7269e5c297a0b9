"""RunBenchmark across processes: accept, refuse with a reason, feedback, result, cancel."""

from pathlib import Path

import pytest
from action_msgs.msg import GoalStatus

from node_helpers import needs_ros
from node_helpers import wait_until

pytestmark = needs_ros


def test_a_goal_runs_to_a_result_with_feedback_and_reports(ros_client, bench_node):
    feedback = []
    handle = ros_client.send(feedback=feedback, models=['qwen2.5:0.5b'], repetitions=1)
    assert handle.accepted
    response = ros_client.result(handle)
    result = response.result
    assert response.status == GoalStatus.STATUS_SUCCEEDED
    assert result.success and result.status == 'ok'
    assert result.error_code == result.NONE and result.error_msg == ''
    assert list(result.still_loaded_models) == []  # the run leaves nothing loaded
    assert [m.model for m in result.models] == ['qwen2.5:0.5b']
    model = result.models[0]
    assert model.status == 'ok' and model.tests_ok == 3 and model.tests_failed == 0
    assert model.decode_tokens_per_s > 0 and 0 <= model.quality_score <= 100
    assert model.memory_peak_gib > 0 and model.cleanup_successful
    for path in (result.jsonl_log, result.report_json, result.report_csv,
                 result.report_markdown, result.memory_plot):
        assert Path(path).is_file(), path
    assert Path(result.results_dir).parent == bench_node.results_dir
    phases = [f.phase for f in feedback]
    for phase in ('planning', 'loading', 'warmup', 'testing', 'unloading', 'reporting', 'done'):
        assert phase in phases, phases
    assert feedback[-1].progress == pytest.approx(1.0)
    assert all(f.model_budget_bytes > 0 for f in feedback if f.phase != 'planning')


def test_a_dry_run_plans_without_loading(ros_client, bench_node):
    handle = ros_client.send(models=['llama3.2:1b', 'qwen2.5:0.5b'], dry_run=True)
    assert handle.accepted
    result = ros_client.result(handle).result
    assert result.status == 'planned' and result.success
    assert 'qwen2.5:0.5b' in result.summary and 'llama3.2:1b' in result.summary
    assert not result.models and not result.report_json


@pytest.mark.parametrize('fields, reason', [
    (dict(preset='reckless'), "unknown preset 'reckless'"),
    (dict(models=['phi 4']), "model name 'phi 4' is malformed"),
    (dict(repetitions=1000), 'repetitions must be within 0..100'),
    (dict(temperature=5.0), 'temperature must be within 0..2'),
    (dict(suite='no_such_suite'), "unknown suite 'no_such_suite'"),
    (dict(run_name='../escape'), "run_name '../escape' may hold only"),
])
def test_bad_goals_are_aborted_with_the_reason_in_the_result(ros_client, bench_node, fields,
                                                             reason):
    # Accepted, then aborted with error_code/error_msg (as Nav2 does): the sender sees why.
    handle = ros_client.send(**fields)
    assert handle.accepted
    response = ros_client.result(handle, timeout_s=20.0)
    result = response.result
    assert response.status == GoalStatus.STATUS_ABORTED
    assert result.error_code == result.INVALID_GOAL
    assert reason in result.error_msg
    assert result.status == 'rejected' and not result.success
    wait_until(lambda: reason in bench_node.log(), 5.0, f'log line {reason!r}')


def test_cancel_stops_the_run_and_a_second_goal_is_rejected_meanwhile(ros_client, bench_node):
    feedback = []
    handle = ros_client.send(feedback=feedback, models=['qwen2.5:0.5b', 'llama3.2:1b'],
                             repetitions=3, run_name='to_cancel')
    assert handle.accepted
    wait_until(lambda: any(f.phase == 'testing' for f in feedback), 30.0, 'testing feedback')

    second = ros_client.send(models=['qwen2.5:0.5b'])
    assert second.accepted
    refused = ros_client.result(second, timeout_s=20.0)
    assert refused.status == GoalStatus.STATUS_ABORTED
    assert refused.result.error_code == refused.result.BUSY
    assert 'a benchmark is already running' in refused.result.error_msg

    from node_helpers import wait_future
    cancel = wait_future(handle.cancel_goal_async(), 10.0)
    assert len(cancel.goals_canceling) == 1
    response = ros_client.result(handle)
    assert response.status == GoalStatus.STATUS_CANCELED
    result = response.result
    assert result.status == 'canceled' and not result.success
    assert result.error_code == result.CANCELED
    assert Path(result.jsonl_log).is_file() and Path(result.report_markdown).is_file()
    assert 'to_cancel' in result.run_id
    assert len(result.models) < 2 or result.models[-1].status != 'ok'

    again = ros_client.send(models=['qwen2.5:0.5b'], dry_run=True)
    assert again.accepted  # the node takes goals again once the canceled run ended
    assert ros_client.result(again).result.status == 'planned'
