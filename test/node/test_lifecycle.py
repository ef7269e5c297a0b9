"""The managed lifecycle node: configure connects, activate serves, deactivate cancels a run."""

import time
from pathlib import Path

import pytest
from action_msgs.msg import GoalStatus

from node_helpers import NodeProcess, needs_ros, send_until_testing, wait_future, wait_until
from report_renderings import assert_one_truth

pytestmark = needs_ros


@pytest.fixture
def lifecycle_node(tmp_path):
    """Start a llm_bench node in lifecycle mode (unconfigured)."""
    node = NodeProcess.start(results_dir=tmp_path / 'results', log_dir=tmp_path,
                             lifecycle=True)
    node.wait_for_text('lifecycle node unconfigured', 30.0)
    yield node
    node.stop()


def _transition(ros_client, transition_id):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    client = ros_client.node.create_client(ChangeState, '/llm_bench/change_state')
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return wait_future(client.call_async(request), 150.0).success
    finally:
        ros_client.node.destroy_client(client)


def _state(ros_client):
    from lifecycle_msgs.srv import GetState
    client = ros_client.node.create_client(GetState, '/llm_bench/get_state')
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        return wait_future(client.call_async(GetState.Request()), 10.0).current_state.label
    finally:
        ros_client.node.destroy_client(client)


def test_lifecycle_transitions_bring_the_node_up_and_down(ros_client, lifecycle_node):
    from lifecycle_msgs.msg import Transition
    assert _state(ros_client) == 'unconfigured'
    assert _transition(ros_client, Transition.TRANSITION_CONFIGURE)
    assert _state(ros_client) == 'inactive'

    # Inactive: the action exists, goals come back aborted with the reason.
    handle = ros_client.send(models=['qwen2.5:0.5b'], dry_run=True)
    assert handle.accepted
    refused = ros_client.result(handle, timeout_s=20.0)
    assert refused.status == GoalStatus.STATUS_ABORTED
    assert refused.result.error_code == refused.result.NOT_ACTIVE

    messages = []
    sub = ros_client.subscribe_memory(messages)
    try:
        time.sleep(1.0)
        assert messages == []  # nothing published while inactive
        assert _transition(ros_client, Transition.TRANSITION_ACTIVATE)
        assert _state(ros_client) == 'active'
        wait_until(lambda: messages, 20.0, 'memory messages once active')

        handle = send_until_testing(ros_client, 60.0)
        # Deactivate cancels the run cleanly: the transition returns once the run has ended.
        assert _transition(ros_client, Transition.TRANSITION_DEACTIVATE)
        response = ros_client.result(handle, timeout_s=30.0)
        assert response.status == GoalStatus.STATUS_ABORTED
        result = response.result
        assert result.status == 'canceled' and result.error_code == result.INTERRUPTED
        # What Ollama held at the end is named with its reason (a model being unloaded is
        # followed until /api/ps drops it), or "?" with the reason when /api/ps was silent.
        assert set(result.still_loaded_models) <= {'?', 'qwen2.5:0.5b', 'llama3.2:1b'}
        assert all(result.still_loaded_reasons)
        # One truth: the action result, results.json, summary.md and the CSV say the same.
        models = assert_one_truth(Path(result.report_json).parent, action_result=result)
        assert set(models) <= {'qwen2.5:0.5b', 'llama3.2:1b'} and models
        assert _state(ros_client) == 'inactive'
        count = len(messages)
        time.sleep(1.5)
        assert len(messages) <= count + 1  # at most one in flight when the timer stopped
    finally:
        ros_client.node.destroy_subscription(sub)

    assert _transition(ros_client, Transition.TRANSITION_CLEANUP)
    assert _state(ros_client) == 'unconfigured'
    assert _transition(ros_client, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert _state(ros_client) == 'finalized'
