"""Start llm_bench node processes for the reliability tests and talk to them with rclpy."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_TEXT = 'ready: action'
BUILD_HINT = ('shadowhound_llm_bench_interfaces is not built: run `make bootstrap` and '
              '`source scripts/env.sh`')
# The small scenario's node_parameters (config/scenarios/small.yaml) in GiB.
SMALL_PARAMS: Dict[str, Any] = {
    'container.backend': 'api_only',
    'policy.memory_scale': 0.125,
    'host.simulated_total_gib': 1.0,
    'host.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.repetitions': 1,
    'benchmark.num_predict': 16,
    'benchmark.pull_missing': False,
    'publish_rate_hz': 4.0,
    'sample_period_s': 0.1,
    'feedback_period_s': 0.5,
}


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


def dead_url() -> str:
    """Return a URL on which nothing listens (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}'


def ros_arg(name: str, value: Any) -> List[str]:
    """One `-p name:=value` pair in the ROS command-line syntax."""
    if isinstance(value, bool):
        text = 'true' if value else 'false'
    elif isinstance(value, list):
        text = '[' + ', '.join(f"'{v}'" for v in value) + ']'
    else:
        text = str(value)
    return ['-p', f'{name}:={text}']


class NodeProcess:
    """A `python -m shadowhound_llm_bench.ros.node` child in its own session."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    def start(cls, *, log_path: Path, params: Dict[str, Any],
              env: Optional[Dict[str, str]] = None,
              extra_args: Sequence[str] = ()) -> 'NodeProcess':
        """Start the node with SMALL_PARAMS overridden by `params` (then `extra_args`)."""
        values = dict(SMALL_PARAMS)
        values.update(params)
        argv = [sys.executable, '-m', 'shadowhound_llm_bench.ros.node', '--ros-args']
        for name, value in values.items():
            argv += ros_arg(name, value)
        argv += list(extra_args)
        with open(log_path, 'wb') as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                env=env or child_env(), start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        return cls(process, log_path)

    def log(self) -> str:
        """Everything the node printed so far."""
        return self.log_path.read_text(errors='replace')

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the node's ready line; fail with its log when it exits or is late."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if READY_TEXT in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f'node exited ({self.process.returncode}):\n{self.log()}')
            time.sleep(0.1)
        raise AssertionError(f'node not ready in {timeout_s} s:\n{self.log()}')

    def kill(self) -> None:
        """SIGKILL the node process only (as the kernel's OOM killer would)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGINT, then SIGKILL to the node's whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=5)


class RosClient:
    """An rclpy node in the test process, spun on a thread, with an action client."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import MultiThreadedExecutor
        from shadowhound_llm_bench_interfaces.action import RunBenchmark

        self.rclpy = rclpy
        self.RunBenchmark = RunBenchmark
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('reliab_client', context=self.context)
        self.executor = MultiThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.action = ActionClient(self.node, RunBenchmark, '/llm_bench/run_benchmark')
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:
                if not self.context.ok():
                    return
                raise

    def send(self, **fields: Any) -> Any:
        """Send a goal and return its handle (check .accepted)."""
        assert self.action.wait_for_server(timeout_sec=20.0), 'no action server'
        goal = self.RunBenchmark.Goal()
        for key, value in fields.items():
            setattr(goal, key, value)
        return wait_future(self.action.send_goal_async(goal), 20.0)

    def result(self, handle: Any, timeout_s: float = 60.0) -> Any:
        """Wait for a goal's result message."""
        return wait_future(handle.get_result_async(), timeout_s).result

    def close(self) -> None:
        """Destroy the client and shut its context down."""
        self.action.destroy()
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


def wait_until(predicate: Any, timeout_s: float, what: str) -> Any:
    """Poll a predicate until it returns something true, or fail at the deadline."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f'timed out waiting for {what}')
