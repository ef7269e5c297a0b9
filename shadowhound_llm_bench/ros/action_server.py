"""The RunBenchmark action server: one goal at a time, validated goals, cancel, steady feedback."""

# Every goal is accepted, then checked: a goal that cannot run (bad fields, unknown suite, a run
# already going, the node not active) is aborted at once with error_code and error_msg in its
# result, as Nav2 actions do, so the sender sees the reason and not only "Goal was rejected".
# Cancel is accepted: the request in flight is cut at once (load, stream, unload wait, restart
# wait or memory wait), the unload is sent, the partial report is written and the result comes
# back canceled.

from __future__ import annotations

import queue
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from ..core.settings.goal_outcome import GoalErrorCode, GoalOutcome, GoalState, outcome_of_run
from ..core.settings.goal_validation import GoalRejected, GoalRequest, ResolvedGoal, resolve_goal
from ..core.memory.memory_reading import MemoryReading
from ..core.settings.node_settings import NodeSettings
from ..core.runs.progress import Phase, ProgressEvent, ProgressSink
from ..engine.cancellation import CancelToken
from .messages import feedback_msg

ACTION_NAME = "~/run_benchmark"


@dataclass
class RunReport:
    """What a finished run hands back: the filled Result message and its status word."""

    result: Any  # RunBenchmark.Result
    status: str  # ok | partial | failed | canceled | aborted | planned (core/runs/run_status.py)
    message: str = ""


# Runs one goal to the end in the calling thread; must honour `cancel` and report progress.
RunGoal = Callable[[ResolvedGoal, NodeSettings, ProgressSink, threading.Event], RunReport]


def goal_request_from_msg(goal: Any) -> GoalRequest:
    """Copy the goal message's fields into plain Python."""
    return GoalRequest(
        models=[str(m) for m in goal.models], suite=goal.suite,
        repetitions=int(goal.repetitions), preset=goal.preset, dry_run=bool(goal.dry_run),
        order=goal.order, num_ctx=int(goal.num_ctx), num_predict=int(goal.num_predict),
        temperature=float(goal.temperature), seed=int(goal.seed), keep_alive=goal.keep_alive,
        no_pull=bool(goal.no_pull), run_name=goal.run_name, resume_run_id=goal.resume_run_id,
        calibrate=bool(getattr(goal, "calibrate", False)))


class BenchmarkActionServer:
    """Glue between rclpy's ActionServer and a RunGoal callable executed in a worker thread."""

    def __init__(self, node: Node, *, action_type: type, run_goal: RunGoal,
                 check_goal: Callable[[ResolvedGoal, NodeSettings], None],
                 settings: Callable[[], NodeSettings], suite_dirs: Iterable,
                 latest_reading: Callable[[], Optional[MemoryReading]]) -> None:
        self._node = node
        self._action_type = action_type
        self._run_goal = run_goal
        self._check_goal = check_goal
        self._settings = settings
        self._suite_dirs = list(suite_dirs)
        self._latest_reading = latest_reading
        self._lock = threading.Lock()
        self._busy = False
        self._running_handle: Any = None
        # Lifecycle mode: goals are refused with NOT_ACTIVE until the node is activated.
        self.active = True
        self.inactive_state = "inactive"
        self._cancel = CancelToken()
        self._idle = threading.Event()
        self._idle.set()
        self.state = "idle"
        self._server = ActionServer(
            node, action_type, ACTION_NAME, execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=self._on_cancel,
            callback_group=ReentrantCallbackGroup())

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy

    def cancel_running(self, reason: str) -> bool:
        """Ask a running goal to stop (e.g. on SIGINT); True when one was running."""
        with self._lock:
            running = self._busy
        if running:
            self._node.get_logger().warning(f"canceling the running benchmark: {reason}")
            self._cancel.cancel(f"canceled by the node: {reason}")
        return running

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no goal runs; False when the deadline passed first."""
        return self._idle.wait(timeout_s)

    def destroy(self) -> None:
        self._server.destroy()

    def _on_goal(self, goal: Any) -> GoalResponse:
        # Accepted so the reason can travel back in the result; _admit decides.
        return GoalResponse.ACCEPT

    def _admit(self, request: Any) -> Any:
        """Check a goal and claim the run slot: (resolved, cancel) or a refused GoalOutcome."""
        if not self.active:
            return GoalOutcome(GoalState.ABORTED, GoalErrorCode.NOT_ACTIVE,
                               "the llm_bench node is not active (lifecycle state "
                               f"{self.inactive_state}); activate it first")
        try:
            settings = self._settings()
            resolved = resolve_goal(goal_request_from_msg(request), settings,
                                    suite_dirs=self._suite_dirs)
            self._check_goal(resolved, settings)
        except GoalRejected as exc:
            return GoalOutcome(GoalState.ABORTED, GoalErrorCode.INVALID_GOAL, str(exc))
        with self._lock:
            if self._busy:
                return GoalOutcome(GoalState.ABORTED, GoalErrorCode.BUSY,
                                   "a benchmark is already running (one run at a time; cancel "
                                   "it or wait for its result)")
            self._busy = True
            self._idle.clear()
            self._cancel = CancelToken()
            cancel = self._cancel
        self._node.get_logger().info(
            f"goal accepted: models {', '.join(resolved.models)}, preset {resolved.preset}, "
            f"suite {resolved.suite}" + (", dry run" if resolved.dry_run else ""))
        return resolved, cancel

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        self._node.get_logger().info("cancel requested: cutting the request in flight")
        with self._lock:
            mine = self._running_handle is goal_handle
            cancel = self._cancel
        if mine:
            cancel.cancel("goal canceled by the client")
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> Any:
        admitted = self._admit(goal_handle.request)
        if isinstance(admitted, GoalOutcome):
            self._node.get_logger().error(f"goal refused: {admitted.error_msg}")
            return self._refused(goal_handle, admitted)
        resolved, cancel = admitted
        with self._lock:
            self._running_handle = goal_handle
        try:
            return self._execute_resolved(goal_handle, resolved, cancel)
        finally:
            with self._lock:
                self._busy = False
                self._running_handle = None
            self.state = "idle"
            self._idle.set()

    def _refused(self, goal_handle: Any, outcome: GoalOutcome) -> Any:
        result = self._action_type.Result()
        result.success = False
        result.status = "rejected"
        result.error_code = int(outcome.error_code)
        result.error_msg = outcome.error_msg
        result.summary = f"goal refused: {outcome.error_msg}"
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _execute_resolved(self, goal_handle: Any, resolved: ResolvedGoal,
                          cancel: threading.Event) -> Any:
        events: "queue.Queue[Optional[ProgressEvent]]" = queue.Queue()
        outcome: dict = {}
        finished = threading.Event()
        settings = self._settings()

        def work() -> None:
            try:
                outcome["report"] = self._run_goal(resolved, settings, events.put, cancel)
            except Exception as exc:  # the action must end with a result, never hang
                self._node.get_logger().error(
                    f"benchmark failed: {exc}\n{traceback.format_exc()}")
                outcome["error"] = exc
            finally:
                finished.set()
                events.put(None)  # wakes the feedback loop: the result goes out at once

        worker = threading.Thread(target=work, name="llm_bench_run", daemon=True)
        worker.start()
        period_s = float(settings["feedback_period_s"])
        last: Optional[ProgressEvent] = None
        last_sent = 0.0
        while not finished.is_set() or not events.empty():
            if goal_handle.is_cancel_requested:
                cancel.set()
            try:
                event = events.get(timeout=min(0.2, period_s))
            except queue.Empty:
                event = None
            if event is None and finished.is_set():
                continue  # the run ended (its wake-up): drain what is left, then finish
            now = time.monotonic()
            if event is not None:
                last = event
                self.state = f"{event.phase.value} {event.model}".strip()
                self._publish_feedback(goal_handle, event, event.memory)
                last_sent = now
            elif last is not None and now - last_sent >= period_s:
                # Long phases (loading, testing) still tell the client how memory moves.
                self._publish_feedback(goal_handle, last, self._latest_reading())
                last_sent = now
        worker.join()
        return self._finish(goal_handle, resolved, outcome, cancel)

    def _publish_feedback(self, goal_handle: Any, event: ProgressEvent,
                          memory: Optional[MemoryReading]) -> None:
        goal_handle.publish_feedback(
            feedback_msg(self._action_type.Feedback, event,
                         memory if memory is not None else self._latest_reading()))

    def _finish(self, goal_handle: Any, resolved: ResolvedGoal, outcome: dict,
                cancel: threading.Event) -> Any:
        log = self._node.get_logger()
        if isinstance(outcome.get("error"), GoalRejected):  # found only when the run began
            refused = GoalOutcome(GoalState.ABORTED, GoalErrorCode.INVALID_GOAL,
                                  str(outcome["error"]))
            return self._refused(goal_handle, refused)
        if "error" in outcome:
            result = self._action_type.Result()
            result.success = False
            result.status = "aborted"
            result.error_code = int(GoalErrorCode.UNKNOWN)
            result.error_msg = f"benchmark failed: {outcome['error']}"
            result.summary = result.error_msg
            goal_handle.abort()
            return result
        report: RunReport = outcome["report"]
        result = report.result
        ended = outcome_of_run(report.status, report.message,
                               cancel_requested=goal_handle.is_cancel_requested)
        result.success = ended.success
        result.error_code = int(ended.error_code)
        result.error_msg = ended.error_msg
        if ended.state is GoalState.CANCELED:
            goal_handle.canceled()
        elif ended.state is GoalState.SUCCEEDED:
            goal_handle.succeed()
        else:
            goal_handle.abort()  # failed, aborted, or canceled by the node itself (SIGINT)
        log.info(f"benchmark {result.run_id or ''} finished: {report.status}"
                 + (f" ({ended.error_msg})" if ended.error_msg else "")
                 + (f"; report {result.results_dir}" if result.results_dir else ""))
        return result


def done_event(model_count: int, status: str) -> ProgressEvent:
    """Build the last progress event of a run."""
    return ProgressEvent(phase=Phase.DONE, model="", model_index=max(0, model_count - 1),
                         model_count=model_count, progress=1.0, status=status)
