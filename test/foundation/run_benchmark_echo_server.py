"""
A tiny RunBenchmark action server for the foundation tests: echoes goals as feedback/result.

Run as a separate process; prints READY once the action server exists.
"""

import signal
import sys
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from shadowhound_llm_bench_interfaces.action import RunBenchmark
from shadowhound_llm_bench_interfaces.msg import ModelResult

ACTION_NAME = '/llm_bench/run_benchmark'
FEEDBACK_PERIOD_S = 0.2
FEEDBACK_ROUNDS = 5


class EchoServer(Node):
    """Accepts every goal and reports each requested model as tested."""

    def __init__(self) -> None:
        super().__init__('run_benchmark_echo_server')
        self._server = ActionServer(
            self, RunBenchmark, ACTION_NAME, execute_callback=self._execute,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT)

    def _execute(self, handle):
        models = list(handle.request.models)
        feedback = RunBenchmark.Feedback()
        feedback.model_count = len(models)
        # Several rounds: the client's feedback subscription may match a little after the goal.
        for round_index in range(FEEDBACK_ROUNDS):
            for index, model in enumerate(models):
                feedback.model = model
                feedback.model_index = index
                feedback.phase = 'testing'
                feedback.progress = (round_index + 1) / FEEDBACK_ROUNDS
                feedback.container_working_set_bytes = 3 * 2 ** 30
                feedback.container_working_set_gib = 3.0
                feedback.status = f'{handle.request.preset}: testing {model}'
                handle.publish_feedback(feedback)
            time.sleep(FEEDBACK_PERIOD_S)
        handle.succeed()
        result = RunBenchmark.Result()
        result.success = True
        result.status = 'ok'
        result.run_id = 'echo-' + (handle.request.run_name or 'run')
        for model in models:
            result.models.append(ModelResult(model=model, status='ok', tests_ok=1))
        result.peak_container_bytes = 3 * 2 ** 30
        result.peak_container_gib = 3.0
        result.summary = f'{len(models)} model(s) echoed'
        return result


def main() -> int:
    rclpy.init()
    node = EchoServer()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    print('READY', flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
