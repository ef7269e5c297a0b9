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
#   topic   ~/platform_status   -> /llm_bench/platform_status (power, temperature, clocks)
#   topic   /diagnostics
NODE_NAME = "llm_bench"
RESULT_FLUSH_S = 0.5
# A cancel cuts the request in flight within a second; the rest is writing the report.
SIGINT_CANCEL_DEADLINE_S = 10.0
IDLE_WAKEUP_S = 1.0
# At shutdown: how long to wait for a load a cancel cut to end, so it can be unloaded.
LEFTOVERS_DEADLINE_S = 30.0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class NodeParts:
    """
    The node's working parts and their lifecycle steps, shared by the plain and the managed node.

    configure: memory stack (container, host, ROS headroom), loaded-models watch, action server
    (goals refused with NOT_ACTIVE until activated); activate: topic, /diagnostics, goals
    accepted; deactivate: running goal canceled and finished, topic and diagnostics stopped;
    cleanup: everything released.
    """

    def __init__(self, node, interfaces) -> None:
        from .parameters import NodeParameters

        self.node = node
        self.run_benchmark, self.container_memory, self.model_result = interfaces
        self.parameters = NodeParameters(node)
        self.stack = None
        self.watch = None
        self.leftovers = None
        self.action = None
        self.publisher = None
        self.diagnostics = None
        self.platform = None  # power, temperature, clocks (engine/platform_monitor.py)
        self.platform_publisher = None

    def configure(self) -> None:
        """Connect to the container and Ollama; serve the action (refusing goals until active)."""
        from ..core.runs.suite import suite_dirs
        from ..core.decider.policy import MemoryPolicy
        from ..engine.loaded_models_watch import LoadedModelsWatch
        from ..engine.own_leftovers import OwnLeftovers
        from .action_server import BenchmarkActionServer
        from .benchmark_session import BenchmarkSession
        from .memory_stack import build_memory_stack
        from .platform_publisher import start_platform_monitor

        settings = self.parameters.settings
        self.stack = build_memory_stack(settings)
        monitor = self.stack.monitor
        log = self.node.get_logger()
        # What a run of this node left loaded (a load its cancel cut) is unloaded when seen.
        self.leftovers = OwnLeftovers(
            base_url=str(settings["ollama_host"]),
            policy=lambda: MemoryPolicy(self.parameters.settings.policy_settings()),
            busy=lambda: self.action is None or self.action.busy,
            record=lambda decision: log.warning(f"memory policy: {decision.reason}"))
        self.watch = LoadedModelsWatch(base_url=str(settings["ollama_host"]),
                                       sink=monitor.set_loaded_models,
                                       on_names=self.leftovers.on_listed).start()
        self.platform = start_platform_monitor(self.node, settings)
        self.session = BenchmarkSession(stack=self.stack, action_type=self.run_benchmark,
                                        model_result_type=self.model_result,
                                        platform=self.platform, leftovers=self.leftovers)
        self.action = BenchmarkActionServer(
            self.node, action_type=self.run_benchmark, run_goal=self.session.run,
            check_goal=self.session.check, settings=lambda: self.parameters.settings,
            suite_dirs=[d for d in suite_dirs() if d.is_dir()], latest_reading=monitor.latest)
        self.action.active = False
        measured = getattr(self.stack.backend, "measures_memory", True)
        (self.node.get_logger().info if measured else self.node.get_logger().warning)(
            self.stack.backend_choice or "container backend chosen")
        self._warn_when_not_up()

    def _warn_when_not_up(self) -> None:
        from ..core.platform.diagnostic_summary import container_fix
        from ..core.memory.memory_reading import ContainerState

        name = self.stack.container_name
        reading = self.stack.monitor.latest()
        state = reading.container.state if reading is not None else ContainerState.UNKNOWN
        log = self.node.get_logger()
        if self.stack.waiting_fix():
            log.warning(f"Ollama container {name!r}: {self.stack.waiting_fix()}")
        if state in (ContainerState.STOPPED, ContainerState.MISSING):
            log.warning(f"container {name!r} is {state.name.lower()}: no model can run until "
                        f"it is up. Fix: {container_fix(state, name)}")
        elif self.watch.names() is None:
            log.warning(f"Ollama at {self.parameters.settings['ollama_host']} does not answer "
                        f"(container {name!r} {state.name.lower()}); a goal will try to bring "
                        "it back as the memory policy restarts a lost server")
        loaded = self.watch.names()
        if loaded:
            log.warning(f"models already loaded in Ollama: {', '.join(loaded)}; the next run "
                        "unloads them before its first decision")

    def activate(self) -> None:
        """Publish the topic and /diagnostics and accept goals."""
        from .diagnostics import MemoryDiagnostics
        from .memory_publisher import ContainerMemoryPublisher
        from .platform_publisher import start_platform_publisher

        settings = self.parameters.settings
        monitor = self.stack.monitor
        period_s = float(settings["diagnostics_period_s"])
        rate_hz = float(settings["publish_rate_hz"])
        # One timer for the topic and /diagnostics (every executor wake-up costs CPU), unless
        # diagnostics are wanted more often than the topic.
        shared = period_s >= 1.0 / rate_hz
        self.platform_publisher = start_platform_publisher(self.node, self.platform, rate_hz)
        self.diagnostics = MemoryDiagnostics(
            self.node, latest=monitor.latest, top_consumers=self.stack.top_consumers,
            benchmark_state=lambda: self.action.state,
            container_name=self.stack.container_name, thresholds=self._thresholds,
            period_s=period_s, own_timer=not shared,
            extra_statuses=(self.platform_publisher.statuses
                            if self.platform_publisher is not None else None),
            backend_info=self.stack.backend_info, waiting_fix=self.stack.waiting_fix)
        self.publisher = ContainerMemoryPublisher(
            self.node, msg_type=self.container_memory, latest=monitor.latest,
            container_name=self.stack.container_name, rate_hz=rate_hz,
            also_every=(period_s, self.diagnostics.publish) if shared else None)
        self.action.active = True
        self.node.get_logger().info(
            f"ready: action {self.node.resolve_topic_name('~/run_benchmark')}, topic "
            f"{self.publisher.topic_name} at {settings['publish_rate_hz']:g} Hz, "
            f"container {self.stack.container_name!r} ({settings['container.backend']}), "
            f"Ollama {settings['ollama_host']}")

    def deactivate(self, deadline_s: float) -> bool:
        """Refuse new goals, cancel the running one and wait for its result; False if late."""
        finished = True
        if self.action is not None:
            self.action.active = False
            if self.action.cancel_running("the node is being deactivated"):
                finished = self.action.wait_idle(deadline_s)
        for part in (self.publisher, self.diagnostics, self.platform_publisher):
            if part is not None:
                part.destroy()
        self.publisher = None
        self.diagnostics = None
        self.platform_publisher = None
        return finished

    def cleanup(self, leftovers_deadline_s: float = 0.0) -> None:
        """Release the action server, the watch and the memory stack."""
        if self.action is not None:  # no goal is served while the leftovers are waited for
            self.action.destroy()
            self.action = None
        if self.leftovers is not None:
            if leftovers_deadline_s > 0 and self.leftovers.names():
                self.node.get_logger().info(
                    f"waiting up to {leftovers_deadline_s:.0f} s until Ollama no longer holds "
                    f"{', '.join(self.leftovers.names())} (loading or unloading after the run)")
            if not self.leftovers.wait(leftovers_deadline_s):
                self.node.get_logger().error(
                    "Ollama may still hold " + ", ".join(self.leftovers.names()) +
                    ": its load did not end before the deadline")
            self.leftovers.stop()
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        if self.stack is not None:
            self.stack.close()
            self.stack = None
        if self.platform is not None:
            self.platform.close()
            self.platform = None

    def _thresholds(self):
        settings = self.parameters.settings
        return (float(settings["policy.pressure_warn_percent"]),
                float(settings["policy.pressure_error_percent"]))


def build_node(rclpy_module, interfaces):
    """Create the plain node, configured and active; NodeSettingsError or MemoryStackError."""
    from rclpy.node import Node

    class LlmBenchNode(Node):
        """Thin glue: parameters, memory stack, publisher, diagnostics, action server."""

        def __init__(self) -> None:
            super().__init__(NODE_NAME)
            self.parts = None
            self.parts = NodeParts(self, interfaces)
            self.parts.configure()
            self.parts.activate()

        @property
        def action(self):
            return self.parts.action

        def close(self) -> None:
            if self.parts is not None:
                self.parts.deactivate(0.0)
                self.parts.cleanup(LEFTOVERS_DEADLINE_S)
            self.destroy_node()

    return LlmBenchNode()


def build_lifecycle_node(rclpy_module, interfaces):
    """Create the managed node (unconfigured); raises NodeSettingsError for bad parameters."""
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    from .memory_stack import MemoryStackError

    class LlmBenchLifecycleNode(LifecycleNode):
        """The same parts, brought up and down by lifecycle transitions (Nav2 lifecycle)."""

        def __init__(self) -> None:
            super().__init__(NODE_NAME)
            self.parts = NodeParts(self, interfaces)
            self.get_logger().info("lifecycle node unconfigured: waiting for configure")

        @property
        def action(self):
            return self.parts.action

        def on_configure(self, state):
            try:
                self.parts.configure()
            except MemoryStackError as exc:
                self.get_logger().error(f"configure failed: {exc}")
                self.parts.cleanup()
                return TransitionCallbackReturn.FAILURE
            self.parts.action.inactive_state = "inactive"
            self.get_logger().info("configured: connected to the container and Ollama")
            return TransitionCallbackReturn.SUCCESS

        def on_activate(self, state):
            self.parts.activate()
            return super().on_activate(state)

        def on_deactivate(self, state):
            if not self.parts.deactivate(SIGINT_CANCEL_DEADLINE_S):
                self.get_logger().error("the canceled run did not end before the deadline")
            self.get_logger().info("deactivated: goals are refused until activated again")
            return super().on_deactivate(state)

        def on_cleanup(self, state):
            self.parts.cleanup()
            return TransitionCallbackReturn.SUCCESS

        def on_shutdown(self, state):
            self.parts.deactivate(SIGINT_CANCEL_DEADLINE_S)
            self.parts.cleanup(LEFTOVERS_DEADLINE_S)
            return TransitionCallbackReturn.SUCCESS

        def close(self) -> None:
            self.parts.deactivate(0.0)
            self.parts.cleanup(LEFTOVERS_DEADLINE_S)
            self.destroy_node()

    return LlmBenchLifecycleNode()


def _stop_running_goal(node, executor) -> None:
    """SIGINT during a run: cancel it, let it unload and write its report, deliver the result."""
    if node.action is None or not node.action.cancel_running("interrupted (SIGINT)"):
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


def main(argv: Optional[List[str]] = None, *, lifecycle: bool = False) -> int:
    """Run the node until SIGINT/SIGTERM; exit status 2 for invalid parameters or files."""
    rclpy = import_rclpy()
    interfaces = import_interfaces()
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from ..core.settings.node_settings import NodeSettingsError
    from ..core.settings.ros_args import params_files_errors
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
            node = (build_lifecycle_node if lifecycle else build_node)(rclpy, interfaces)
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
                # Timers and requests wake the executor; the timeout only bounds how late a
                # shutdown is noticed, and each idle wake-up costs CPU.
                executor.spin_once(timeout_sec=IDLE_WAKEUP_S)
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


def lifecycle_main(argv: Optional[List[str]] = None) -> int:
    """Run the node as a managed lifecycle node (configure, activate, deactivate, cleanup)."""
    return main(argv, lifecycle=True)


if __name__ == "__main__":
    sys.exit(main(lifecycle="--lifecycle" in sys.argv[1:]))
