"""SIGINT while a run is going: the run is canceled cleanly, its report written, no traceback."""

from pathlib import Path

from action_msgs.msg import GoalStatus

from node_helpers import needs_ros
from node_helpers import NodeProcess, send_until_testing

pytestmark = needs_ros


def test_sigint_during_a_run_cancels_it_and_writes_the_report(ros_client, tmp_path):
    node = NodeProcess.start(results_dir=tmp_path / 'results', log_dir=tmp_path)
    try:
        handle = send_until_testing(ros_client, 30.0)
        node.interrupt()
        response = ros_client.result(handle, timeout_s=60.0)
        assert node.wait(30.0) == 0
    finally:
        node.stop()
    result = response.result
    # Canceled by the node itself, not by the client: the goal ends aborted, the run canceled.
    assert response.status == GoalStatus.STATUS_ABORTED
    assert result.status == 'canceled'
    assert Path(result.jsonl_log).is_file() and Path(result.report_markdown).is_file()
    assert Path(result.report_json).is_file()
    log = node.log()
    assert 'canceling the running benchmark: interrupted (SIGINT)' in log
    assert 'Traceback' not in log
