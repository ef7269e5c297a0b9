"""Start llm_bench node processes and talk to them with rclpy from the test process."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_HINT = ('shadowhound_llm_bench_interfaces is not built: run `make bootstrap` and '
              '`source scripts/env.sh` (colcon build --base-paths . interfaces)')


def interfaces_available() -> bool:
    try:
        import rclpy  # noqa: F401
        from shadowhound_llm_bench_interfaces.action import RunBenchmark  # noqa: F401
    except ImportError:
        return False
    return True


# Test modules import these from here, not from conftest: every test folder has a conftest.py,
# and `from conftest import` would get whichever folder's was imported first.
needs_ros = pytest.mark.skipif(not interfaces_available(), reason=BUILD_HINT)

READY_TEXT = 'ready: action'
SMALL_SCENARIO_PARAMS = {
    # config/scenarios/small.yaml node_parameters, in GiB (1/8 of a small 8 GiB machine).
    'policy.memory_scale': 0.125,
    'host.simulated_total_gib': 1.0,
    'host.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.models': ['qwen2.5:0.5b', 'llama3.2:1b'],
    'benchmark.repetitions': 1,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'feedback_period_s': 0.5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ros_arg(name: str, value: Any) -> List[str]:
    """One `-p name:=value` pair in the ROS command-line syntax."""
    if isinstance(value, bool):
        text = 'true' if value else 'false'
    elif isinstance(value, list):
        text = '[' + ', '.join(f"'{v}'" for v in value) + ']'
    else:
        text = str(value)
    return ['-p', f'{name}:={text}']


def node_env() -> Dict[str, str]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env['PYTHONUNBUFFERED'] = '1'
    return env


class NodeProcess:
    """A `python -m shadowhound_llm_bench.ros.node` child in its own session."""

    def __init__(self, process: subprocess.Popen, log_path: Path, results_dir: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.results_dir = results_dir

    @classmethod
    def start(cls, *, results_dir: Path, log_dir: Path, extra: Optional[Dict[str, Any]] = None,
              wait_ready: bool = True, timeout_s: float = 30.0) -> 'NodeProcess':
        port = free_port()
        params: Dict[str, Any] = dict(SMALL_SCENARIO_PARAMS)
        params.update({
            'container.backend': 'process',
            'container.command': [sys.executable, '-m', 'shadowhound_llm_bench.sim',
                                  '--scenario', 'small', '--port', str(port), '--quiet'],
            'ollama_host': f'http://127.0.0.1:{port}',
            'results_dir': str(results_dir),
        })
        params.update(extra or {})
        argv = [sys.executable, '-m', 'shadowhound_llm_bench.ros.node', '--ros-args']
        for name, value in params.items():
            argv += ros_arg(name, value)
        log_path = log_dir / f'node-{port}.log'
        with open(log_path, 'wb') as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                                       env=node_env(), start_new_session=True,
                                       preexec_fn=_default_sigint)
        node = cls(process, log_path, results_dir)
        if wait_ready:
            node.wait_for_text(READY_TEXT, timeout_s)
        return node

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def wait_for_text(self, text: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if text in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f'node exited ({self.process.returncode}):\n{self.log()}')
            time.sleep(0.1)
        raise AssertionError(f'{text!r} not seen in {timeout_s} s:\n{self.log()}')

    def interrupt(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        """SIGINT to the node, then SIGKILL to its whole group (the simulator included)."""
        self.interrupt()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=5)


class RosTestClient:
    """rclpy node in the test process with an executor thread; action and topic helpers."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from shadowhound_llm_bench_interfaces.action import RunBenchmark
        from shadowhound_llm_bench_interfaces.msg import ContainerMemory

        self.rclpy = rclpy
        self.RunBenchmark = RunBenchmark
        self.ContainerMemory = ContainerMemory
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('llm_bench_test_client', context=self.context)
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

    def action_client(self, name: str = '/llm_bench/run_benchmark'):
        from rclpy.action import ActionClient
        if name not in self._action_clients:
            self._action_clients[name] = ActionClient(self.node, self.RunBenchmark, name)
        client = self._action_clients[name]
        assert client.wait_for_server(timeout_sec=20.0), f'no action server {name}'
        return client

    def goal(self, **fields: Any) -> Any:
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
        return wait_future(future, 20.0)

    def result(self, handle: Any, timeout_s: float = 120.0) -> Any:
        """Wait for the result response (.status: GoalStatus, .result: the message)."""
        return wait_future(handle.get_result_async(), timeout_s)

    def subscribe_memory(self, sink: List[Any], topic: str = '/llm_bench/container_memory'):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_subscription(
            self.ContainerMemory, topic, lambda m: sink.append((time.monotonic(), m)), qos)

    def close(self) -> None:
        for client in self._action_clients.values():
            client.destroy()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


def wait_future(future: Any, timeout_s: float) -> Any:
    end = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > end:
            raise AssertionError(f'no answer within {timeout_s} s')
        time.sleep(0.02)
    return future.result()


def wait_until(predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.05)
