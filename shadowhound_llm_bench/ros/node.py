"""The llm_bench node: RunBenchmark action server, ~/container_memory topic and /diagnostics."""

from __future__ import annotations

import signal
import sys
import time
from typing import List, Optional

from .interfaces_import import import_interfaces, import_rclpy

# Node name and the names it serves (relative, so a namespace or a remap moves them together):
#   action  ~/run_benchmark     -> /llm_bench/run_benchmark
#   topic   ~/container_memory  -> /llm_bench/container_memory (reliable, depth 10)
#   topic   /diagnostics
NODE_NAME = "llm_bench"
RESULT_FLUSH_S = 0.5
# A cancel cuts the request in flight within a second; the rest is writing the report.
SIGINT_CANCEL_DEADLINE_S = 10.0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def build_node(rclpy_module, interfaces):
    """Create the node with every part wired; raises NodeSettingsError or MemoryStackError."""
    from rclpy.node import Node

    from ..core.node_settings import NodeSettings
    from ..core.suite import suite_dirs
    from .action_server import BenchmarkActionServer
    from .benchmark_session import BenchmarkSession
    from .diagnostics import MemoryDiagnostics
    from .memory_publisher import ContainerMemoryPublisher
    from .memory_stack import build_memory_stack
    from .parameters import NodeParameters

    run_benchmark, container_memory, model_result = interfaces

    class LlmBenchNode(Node):
        """Thin glue: parameters, memory stack, publisher, diagnostics, action server."""

        def __init__(self) -> None:
            super().__init__(NODE_NAME)
            self.stack = None
            self.parameters = NodeParameters(self)
            settings: NodeSettings = self.parameters.settings
            self.stack = build_memory_stack(settings)
            monitor = self.stack.monitor
            self.publisher = ContainerMemoryPublisher(
                self, msg_type=container_memory, latest=monitor.latest,
                container_name=self.stack.container_name,
                rate_hz=float(settings["publish_rate_hz"]))
            self.session = BenchmarkSession(
                stack=self.stack, action_type=run_benchmark, model_result_type=model_result)
            self.action = BenchmarkActionServer(
                self, action_type=run_benchmark, run_goal=self.session.run,
                check_goal=self.session.check, settings=lambda: self.parameters.settings,
                suite_dirs=[d for d in suite_dirs() if d.is_dir()], latest_reading=monitor.latest)
            self.diagnostics = MemoryDiagnostics(
                self, latest=monitor.latest, top_consumers=self.stack.top_consumers,
                benchmark_state=lambda: self.action.state,
                container_name=self.stack.container_name,
                thresholds=self._thresholds,
                period_s=float(settings["diagnostics_period_s"]),
                backend_info=self.stack.backend_info)
            measured = getattr(self.stack.backend, "measures_memory", True)
            (self.get_logger().info if measured else self.get_logger().warning)(
                self.stack.backend_choice or "container backend chosen")
            self.get_logger().info(
                f"ready: action {self.resolve_action_name()}, topic "
                f"{self.publisher.topic_name} at {settings['publish_rate_hz']:g} Hz, "
                f"container {self.stack.container_name!r} ({settings['container.backend']}), "
                f"Ollama {settings['ollama_host']}")

        def resolve_action_name(self) -> str:
            return self.resolve_topic_name("~/run_benchmark")

        def _thresholds(self):
            settings = self.parameters.settings
            return (float(settings["policy.pressure_warn_percent"]),
                    float(settings["policy.pressure_error_percent"]))

        def close(self) -> None:
            if getattr(self, "action", None) is not None:
                self.action.destroy()
            if self.stack is not None:
                self.stack.close()
            self.destroy_node()

    return LlmBenchNode()


def _stop_running_goal(node, executor) -> None:
    """SIGINT during a run: cancel it, let it unload and write its report, deliver the result."""
    if not node.action.cancel_running("interrupted (SIGINT)"):
        return
    deadline = time.monotonic() + SIGINT_CANCEL_DEADLINE_S
    try:
        while not node.action.wait_idle(0.0) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        flush_until = time.monotonic() + RESULT_FLUSH_S
        while time.monotonic() < flush_until:
            executor.spin_once(timeout_sec=0.05)
    except KeyboardInterrupt:
        node.get_logger().error("second interrupt: leaving without waiting for the report")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the node until SIGINT/SIGTERM; exit status 2 for invalid parameters or files."""
    rclpy = import_rclpy()
    interfaces = import_interfaces()
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from ..core.node_settings import NodeSettingsError
    from ..core.ros_args import params_files_errors
    from .memory_stack import MemoryStackError

    args = list(argv if argv is not None else sys.argv)
    # rcl would refuse these files with a traceback: say which file and why, in one line each.
    file_errors = params_files_errors(args)
    if file_errors:
        for reason in file_errors:
            print(f"[{NODE_NAME}] not started: {reason}", file=sys.stderr)
        return 2
    # Our own handling: a SIGINT must first cancel the running goal cleanly, so rclpy may not
    # shut the context down underneath it.
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # rcl's RCLError: a ROS argument it cannot parse
        print(f"[{NODE_NAME}] not started: bad ROS arguments: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    node = None
    try:
        try:
            node = build_node(rclpy, interfaces)
        except NodeSettingsError as exc:
            for reason in exc.errors:
                print(f"[{NODE_NAME}] invalid parameter: {reason}", file=sys.stderr)
            print(f"[{NODE_NAME}] not started: fix the parameters above", file=sys.stderr)
            return 2
        except MemoryStackError as exc:
            print(f"[{NODE_NAME}] not started: {exc}", file=sys.stderr)
            return 1
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        try:
            while rclpy.ok():
                executor.spin_once(timeout_sec=0.25)
        except KeyboardInterrupt:
            node.get_logger().info("interrupted: shutting down")
            _stop_running_goal(node, executor)
        executor.shutdown(timeout_sec=2.0)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if node is not None:
            node.close()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
