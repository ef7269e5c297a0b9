"""
A client for mission code, in the spirit of nav2_simple_commander's BasicNavigator.

    import rclpy
    from shadowhound_llm_bench.ros.bench_client import BenchmarkClient, TaskResult

    rclpy.init()
    bench = BenchmarkClient()
    bench.wait_for_server()
    bench.start(models=['phi4:14b'], preset='adaptive')
    while not bench.is_done():
        feedback, memory = bench.feedback(), bench.memory()
        ...                          # the robot goes on with its mission
        if robot_needs_everything:
            bench.cancel()           # the run unloads, writes its partial report and ends
    print(bench.result_kind(), bench.result().summary)
    bench.destroy_node(); rclpy.shutdown()

The class is an rclpy Node that spins itself inside its own methods (like BasicNavigator):
call it from one thread, and do not add it to an executor that spins elsewhere.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Optional

from rclpy.node import Node

from .interfaces_import import import_interfaces

DEFAULT_ACTION = "/llm_bench/run_benchmark"
SPIN_STEP_S = 0.05


class TaskResult(Enum):
    """How the last goal ended, in mission terms."""

    UNKNOWN = 0
    SUCCEEDED = 1  # every model tested (or a plan)
    PARTIAL = 2  # the run finished, but not every model was tested (see skip/failure reasons)
    FAILED = 3  # aborted: refused goal (error_code, error_msg) or nothing tested
    CANCELED = 4  # canceled; result() holds the partial result


def memory_topic_for(action_name: str) -> str:
    """Return the node's memory topic beside its action (/ns/llm_bench/container_memory)."""
    base = action_name.rstrip("/").rsplit("/", 1)[0]
    return f"{base}/container_memory"


class BenchmarkClient(Node):
    """Start a run, read feedback and memory, cancel, and get the (partial) result."""

    def __init__(self, *, node_name: str = "llm_bench_client",
                 action_name: str = DEFAULT_ACTION, memory_topic: Optional[str] = None,
                 context: Any = None) -> None:
        from rclpy.action import ActionClient
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from rclpy.executors import SingleThreadedExecutor

        super().__init__(node_name, context=context)
        # Its own executor: the mission's other nodes and executors are left alone.
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self.RunBenchmark, self.ContainerMemory, _ = import_interfaces()
        self.action_name = action_name
        self._client = ActionClient(self, self.RunBenchmark, action_name)
        self._memory_sub = self.create_subscription(
            self.ContainerMemory, memory_topic or memory_topic_for(action_name),
            self._on_memory, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._handle: Any = None
        self._result_future: Any = None
        self._response: Any = None
        self._feedback: Any = None
        self._memory: Any = None
        self.feedback_count = 0

    # ------------------------------------------------------------------ spinning
    def _spin_until(self, future: Any, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < end:
            self._executor.spin_once(timeout_sec=SPIN_STEP_S)
        return future.done()

    def spin(self, duration_s: float = 0.0) -> None:
        """Process incoming feedback and memory messages for a while (0: what is waiting)."""
        end = time.monotonic() + duration_s
        while True:
            self._executor.spin_once(timeout_sec=0.0 if duration_s <= 0 else SPIN_STEP_S)
            if time.monotonic() >= end:
                return

    # ------------------------------------------------------------------ goal
    def wait_for_server(self, timeout_s: float = 10.0) -> bool:
        """Wait until the llm_bench node serves its action; False at the deadline."""
        return bool(self._client.wait_for_server(timeout_sec=timeout_s))

    def make_goal(self, **fields: Any) -> Any:
        """Build a RunBenchmark goal from keyword fields (models=[...], preset=..., ...)."""
        goal = self.RunBenchmark.Goal()
        for name, value in fields.items():
            if not hasattr(goal, name):
                raise ValueError(f"RunBenchmark goals have no field {name!r}")
            setattr(goal, name, value)
        return goal

    def start(self, goal: Any = None, *, timeout_s: float = 10.0, **fields: Any) -> bool:
        """
        Send a goal (a RunBenchmark.Goal, or its fields as keywords); True once accepted.

        The node accepts every well-formed request and aborts one it cannot run at once, with
        the reason in result().error_msg; False only when the server did not answer.
        """
        if self._handle is not None and not self.is_done():
            raise RuntimeError("a goal of this client is still running: cancel it or wait")
        goal = goal if goal is not None else self.make_goal(**fields)
        self._handle = self._result_future = self._response = self._feedback = None
        send = self._client.send_goal_async(goal, feedback_callback=self._on_feedback)
        if not self._spin_until(send, timeout_s):
            return False
        self._handle = send.result()
        if not self._handle.accepted:
            return False
        self._result_future = self._handle.get_result_async()
        return True

    def is_done(self) -> bool:
        """Spin briefly; True once the result arrived (or no goal was started)."""
        if self._result_future is None:
            return True
        if not self._result_future.done():
            self._executor.spin_once(timeout_sec=SPIN_STEP_S)
        if self._result_future.done():
            self._response = self._result_future.result()
            return True
        return False

    def wait(self, timeout_s: float = 3600.0) -> Optional[Any]:
        """Block until the result (or the deadline); the result message or None."""
        end = time.monotonic() + timeout_s
        while not self.is_done():
            if time.monotonic() >= end:
                return None
        return self.result()

    def cancel(self, *, wait_result_s: float = 120.0) -> Optional[Any]:
        """
        Cancel the running goal and wait for its result, which holds the partial run.

        The node stops after the current request, unloads, writes the partial report, then
        answers; None when no result came within wait_result_s.
        """
        if self._handle is None or self.is_done():
            return self.result()
        cancel = self._handle.cancel_goal_async()
        self._spin_until(cancel, min(10.0, wait_result_s))
        return self.wait(wait_result_s)

    def destroy_node(self) -> None:
        """Destroy the action client, the subscription and the node."""
        self._executor.remove_node(self)
        self._executor.shutdown(timeout_sec=1.0)
        self._client.destroy()
        super().destroy_node()

    # ------------------------------------------------------------------ what came back
    def _on_feedback(self, message: Any) -> None:
        self._feedback = message.feedback
        self.feedback_count += 1

    def _on_memory(self, message: Any) -> None:
        self._memory = message

    def feedback(self) -> Optional[Any]:
        """Return the latest RunBenchmark feedback of the running goal (None before the first)."""
        return self._feedback

    def memory(self) -> Optional[Any]:
        """Return the latest ContainerMemory message (None before the first)."""
        return self._memory

    def result(self) -> Optional[Any]:
        """Return the RunBenchmark result message once the goal ended, else None."""
        return self._response.result if self._response is not None else None

    def goal_status(self) -> int:
        """Return the action_msgs GoalStatus code of the ended goal (0 = unknown)."""
        return int(self._response.status) if self._response is not None else 0

    def result_kind(self) -> TaskResult:
        """Tell how the last goal ended: SUCCEEDED, PARTIAL, FAILED, CANCELED or UNKNOWN."""
        from action_msgs.msg import GoalStatus

        result = self.result()
        if result is None:
            return TaskResult.UNKNOWN
        status = self.goal_status()
        if status == GoalStatus.STATUS_CANCELED:
            return TaskResult.CANCELED
        if status == GoalStatus.STATUS_SUCCEEDED:
            return TaskResult.SUCCEEDED if result.success else TaskResult.PARTIAL
        return TaskResult.FAILED
