"""What node-level tests share: starting llm_bench node processes and an rclpy test client."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from shadowhound_llm_bench.common.process_group import (start_process_group,
                                                        stop_process_group, wait_for_text)
from shadowhound_llm_bench.core.settings.ros_args import parameter_args

REPO = Path(__file__).resolve().parents[2]
READY_TEXT = 'ready: action'
# config/scenarios/small.yaml node_parameters, in GiB (1/8 of a small 8 GiB machine).
SMALL_SCENARIO_MEMORY = {
    'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0,
    'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
}
# How long a node may take to answer (discovery, goal acceptance): a deadline that catches a hung
# node, not a timing claim, so it is wide enough for a busy 2-core machine (a goal's acceptance
# took over 20 s once, beside four other test sessions on 2 cores).
ANSWER_DEADLINE_S = 60.0
BUILD_HINT = ('shadowhound_llm_bench_interfaces is not built: run `make bootstrap` and '
              '`source scripts/env.sh` (colcon build --base-paths . interfaces)')


def interfaces_available() -> bool:
    """Tell whether rclpy and the built interfaces import."""
    try:
        import rclpy  # noqa: F401
        from shadowhound_llm_bench_interfaces.action import RunBenchmark  # noqa: F401
    except ImportError:
        return False
    return True


needs_ros = pytest.mark.skipif(not interfaces_available(), reason=BUILD_HINT)


def child_env(**extra: str) -> Dict[str, str]:
    """Environment of a child: this repository first on PYTHONPATH, unbuffered output."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra)
    return env


ros_arg = parameter_args  # the reliability tests build argv with it


class NodeProcess:
    """A `python -m shadowhound_llm_bench.ros.node` child in its own session."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    def launch(cls, *, params: Dict[str, Any], log_path: Path,
               env: Optional[Dict[str, str]] = None, extra_args: Sequence[str] = (),
               lifecycle: bool = False) -> Any:
        """Start the node with these parameters (then extra_args); does not wait."""
        argv = [sys.executable, '-m', 'shadowhound_llm_bench.ros.node']
        argv += (['--lifecycle'] if lifecycle else []) + ['--ros-args']
        # Measured footprints and action costs stay in the test's own state folder.
        params = {'state_dir': str(log_path.parent / 'state'), **params}
        for name, value in params.items():
            argv += parameter_args(name, value)
        argv += list(extra_args)
        with open(log_path, 'wb') as log:
            process = start_process_group(argv, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=str(REPO), env=env or child_env())
        return cls(process, log_path)

    def log(self) -> str:
        """Everything the node printed so far."""
        return self.log_path.read_text(errors='replace')

    def wait_for_text(self, text: str, timeout_s: float) -> None:
        """Wait for a line of the node's log; fail with the log when it exits or is late."""
        try:
            wait_for_text(self.log_path, text, self.process, timeout_s=timeout_s,
                          what='the node')
        except RuntimeError as exc:
            raise AssertionError(f'{exc}\n{self.log()}') from None

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the node serves its action."""
        self.wait_for_text(READY_TEXT, timeout_s)

    def interrupt(self) -> None:
        """SIGINT to the node alone (Ctrl-C)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the node process only (as the kernel's OOM killer would)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait(self, timeout_s: float) -> int:
        """Wait for the node to exit; its exit status."""
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        """SIGINT to the node, then SIGKILL to its whole group (a simulator it started too)."""
        self.interrupt()
        stop_process_group(self.process, first_signal=None, grace_s=15.0)


def race_free_action_client(node: Any, action_type: Any, name: str) -> Any:
    """
    Return an rclpy ActionClient whose replies cannot overtake the bookkeeping of their requests.

    This client spins in a background thread while the test thread sends. rclpy before the fix
    of ros2/rclpy#1123 (7.1.5 in the Jazzy wheels here) records a request only after sending it,
    so a quick reply (a goal rejected at once, on a busy machine) can be taken by the executor
    first: it logs "Ignoring unexpected goal response" and the future never completes. Here the
    send and its bookkeeping hold a lock that the reply's handling waits for.
    """
    from rclpy.action import ActionClient

    class RaceFreeActionClient(ActionClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._requests_lock = threading.RLock()

        def send_goal_async(self, *args: Any, **kwargs: Any) -> Any:
            with self._requests_lock:
                return super().send_goal_async(*args, **kwargs)

        def _cancel_goal_async(self, *args: Any, **kwargs: Any) -> Any:
            with self._requests_lock:
                return super()._cancel_goal_async(*args, **kwargs)

        def _get_result_async(self, *args: Any, **kwargs: Any) -> Any:
            with self._requests_lock:
                return super()._get_result_async(*args, **kwargs)

        async def execute(self, taken_data: Any) -> None:
            with self._requests_lock:  # the request behind this reply is recorded by now
                pass
            await super().execute(taken_data)

    return RaceFreeActionClient(node, action_type, name)


class RosTestClient:
    """rclpy node in the test process with an executor thread; action and topic helpers."""

    def __init__(self, name: str = 'llm_bench_test_client') -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from shadowhound_llm_bench_interfaces.action import RunBenchmark
        from shadowhound_llm_bench_interfaces.msg import ContainerMemory

        self.rclpy = rclpy
        self.RunBenchmark = RunBenchmark
        self.ContainerMemory = ContainerMemory
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._action_clients: Dict[str, Any] = {}

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:
                if not self.context.ok():
                    return
                raise

    def action_client(self, name: str = '/llm_bench/run_benchmark') -> Any:
        """Return the action client for `name`, once its server is up."""
        if name not in self._action_clients:
            self._action_clients[name] = race_free_action_client(
                self.node, self.RunBenchmark, name)
        client = self._action_clients[name]
        assert client.wait_for_server(timeout_sec=ANSWER_DEADLINE_S), f'no action server {name}'
        return client

    def goal(self, **fields: Any) -> Any:
        """Build a RunBenchmark goal from keyword fields."""
        goal = self.RunBenchmark.Goal()
        for key, value in fields.items():
            setattr(goal, key, value)
        return goal

    def send(self, feedback: Optional[List[Any]] = None, **fields: Any) -> Any:
        """Send a goal; returns the goal handle (check .accepted)."""
        client = self.action_client()
        future = client.send_goal_async(
            self.goal(**fields),
            feedback_callback=(lambda m: feedback.append(m.feedback))
            if feedback is not None else None)
        return wait_future(future, ANSWER_DEADLINE_S)

    def result(self, handle: Any, timeout_s: float = 120.0) -> Any:
        """Wait for the result response (.status: GoalStatus, .result: the message)."""
        return wait_future(handle.get_result_async(), timeout_s)

    def subscribe_memory(self, sink: List[Any], topic: str = '/llm_bench/container_memory'):
        """Append (monotonic time, ContainerMemory) pairs to sink."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_subscription(
            self.ContainerMemory, topic, lambda m: sink.append((time.monotonic(), m)), qos)

    def diagnostics(self, timeout_s: float = 3.0) -> List[Any]:
        """Return the /diagnostics arrays heard until the first one (timeout_s at most)."""
        from diagnostic_msgs.msg import DiagnosticArray
        seen: List[Any] = []
        sub = self.node.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
        try:
            end = time.monotonic() + timeout_s
            while not seen and time.monotonic() < end:
                time.sleep(0.05)
        finally:
            self.node.destroy_subscription(sub)
        return seen

    def close(self) -> None:
        """Destroy the clients and shut the context down."""
        for client in self._action_clients.values():
            client.destroy()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


def wait_future(future: Any, timeout_s: float) -> Any:
    """Wait for an rclpy future with a deadline."""
    end = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > end:
            raise AssertionError(f'no answer within {timeout_s} s')
        time.sleep(0.02)
    return future.result()


@contextlib.contextmanager
def ros_test_client(name: str = 'llm_bench_test_client',
                    client_class: type = RosTestClient) -> Iterator[Any]:
    """Give an rclpy test client, closed afterwards; skip the test without the interfaces."""
    if not interfaces_available():
        pytest.skip(BUILD_HINT)
    client = client_class(name)
    try:
        yield client
    finally:
        client.close()
