"""One benchmark goal turned into a runner over the node's memory stack, and its result message."""

from __future__ import annotations

import threading
from pathlib import Path
import time
from typing import Any, Callable, List, Optional

from ..adapters.ollama_client import OllamaClient
from ..core.settings.goal_validation import GoalRejected, ResolvedGoal, suite_path_dirs
from ..core.settings.node_settings import NodeSettings, policy_order
from ..core.memory.memory_reading import MemoryReading
from ..core.decider.policy import MemoryPolicy
from ..core.decider.residency import left_loaded, left_loaded_text
from ..core.runs.progress import Phase, ProgressEvent, ProgressSink
from ..core.runs.suite import SuiteError, load_suite
from ..engine.footprint_cache import footprint_cache_for
from ..adapters.memory_sources import CacheDropper
from ..engine.management_costs import ManagementCosts
from ..engine.calibration_store import CalibrationStore, calibration_path_beside
from ..engine.memory_calibration import apply_stored
from ..engine.memory_guard import PolicyMemoryGuard
from ..engine.platform_monitor import PlatformMonitor
from ..engine.oom_backstop import ros_pids_of
from ..engine.own_leftovers import OwnLeftovers
from ..engine.run_bookends import RunBookends, run_between_bookends
from ..engine.runner import BenchmarkRunner
from ..engine.server_identity import server_key_of
from ..engine.state_dir import footprint_cache_path, management_costs_path, state_dir
from ..reports.run_dir import RunDirError
from .action_server import RunReport
from .memory_stack import MemoryStack
from .messages import plan_result_msg, result_msg
from .platform_text import plan_machine_text, result_platform_text


class RunMemoryGuard(PolicyMemoryGuard):
    """The policy's guard over the node's long-lived monitor, with this run's readings only."""

    def __init__(self, *, since_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._since_s = since_s

    def timeline(self) -> List[MemoryReading]:
        """Return the readings taken since the run started (the node samples outside runs too)."""
        return [r for r in self.monitor.timeline() if r.stamp_s >= self._since_s]

    def close(self) -> None:
        """Stop waiting; the node's monitor keeps sampling for the topic."""
        self.stop_waiting()
        self.stop_watchers()


class PhaseRelay:
    """Turns the guard's phase calls (unloading, restarting, ...) into progress events."""

    def __init__(self, sink: ProgressSink, latest: Callable[[], Optional[MemoryReading]]) -> None:
        self._sink = sink
        self._latest = latest
        self.last: Optional[ProgressEvent] = None

    def progress(self, event: ProgressEvent) -> None:
        self.last = event
        self._sink(event)

    def phase(self, phase: Phase, model: str, status: str) -> None:
        last = self.last
        self._sink(ProgressEvent(
            phase=phase, model=model, model_index=last.model_index if last else 0,
            model_count=last.model_count if last else 0,
            progress=last.progress if last else 0.0, status=status, memory=self._latest()))


def _record_history(run_dir: Optional[Path], settings: NodeSettings) -> str:
    """Record the run in the history database; return its regression line (or why not)."""
    # Imported here: the comparison brings scipy, about 60 MiB the idle node need not hold.
    from ..reports.history_db import HISTORY_DB_NAME, HistoryError
    from ..reports.history_recording import record_finished_run
    from ..reports.run_snapshot_reader import RunLoadError

    if run_dir is None:
        return "not recorded (no run folder)"
    db_path = str(settings["history_db"]).strip()
    try:
        # Empty: the state folder's database (the CLI's default when state_dir is empty too).
        check = record_finished_run(run_dir, db_path=Path(db_path).expanduser() if db_path
                                    else state_dir(str(settings["state_dir"])) / HISTORY_DB_NAME)
    except (RunLoadError, HistoryError, OSError) as exc:
        return f"not recorded: {exc}"
    return check.summary


class BenchmarkSession:
    """Runs goals for the action server: builds client, guard and runner per goal."""

    def __init__(self, *, stack: MemoryStack, action_type: type,
                 model_result_type: type, platform: Optional[PlatformMonitor] = None,
                 leftovers: Optional[OwnLeftovers] = None) -> None:
        self._stack = stack
        self._leftovers = leftovers
        self._platform = platform
        self._action_type = action_type
        self._model_result_type = model_result_type

    def check(self, goal: ResolvedGoal, settings: NodeSettings) -> None:
        """Check what needs files (the suite, the resumed run); raises GoalRejected."""
        try:
            load_suite(goal.suite, allowed_path_dirs=suite_path_dirs(settings))
        except SuiteError as exc:
            raise GoalRejected(f"suite {goal.suite!r} cannot be used: {exc}") from exc
        if goal.resume_run_id:
            root = Path(str(settings["results_dir"])).expanduser()
            if not (root / goal.resume_run_id / "tests.jsonl").is_file():
                raise GoalRejected(f"cannot resume {goal.resume_run_id!r}: no such run under "
                                   f"{root}")

    def run(self, goal: ResolvedGoal, settings: NodeSettings, on_progress: ProgressSink,
            cancel: threading.Event) -> RunReport:
        """Run (or plan) the goal to its end in the calling thread."""
        suite = load_suite(goal.suite, allowed_path_dirs=suite_path_dirs(settings))
        client = OllamaClient(base_url=str(settings["ollama_host"]),
                              request_timeout_s=float(settings["request_timeout_s"]))
        results_root = Path(str(settings["results_dir"])).expanduser()
        relay = PhaseRelay(on_progress, self._stack.monitor.latest)
        guard = self._guard(goal, settings, client, results_root, relay)
        try:
            runner = BenchmarkRunner(
                client=client, guard=guard, options=goal.options, suite=suite,
                results_root=results_root,
                run_id=goal.resume_run_id or None, run_name=goal.run_name or None,
                resume=bool(goal.resume_run_id), on_progress=relay.progress, cancel=cancel,
                preset=goal.preset, note="started by the llm_bench ROS node",
                platform=self._platform)
            if goal.dry_run:
                plan = runner.plan(goal.models)
                result = plan_result_msg(self._action_type.Result, plan)
                if self._platform is not None:
                    result.summary += "\n" + plan_machine_text(self._platform.machine(
                        bandwidth_override_bytes_per_s=goal.options.memory_bandwidth_bytes_per_s,
                        container=self._stack.backend))
                return RunReport(result=result, status="planned")
            run_models = list(goal.models) + ([goal.options.canary_model]
                                              if goal.options.canary_model else [])
            outcome, bookends = run_between_bookends(
                guard, client, lambda: runner.run(goal.models), run_models,
                keep_others=bool(settings["policy.keep_models_found_loaded"]),
                load_deadline_s=goal.options.load_deadline_s,
                run_dir=lambda: Path(runner.results_root) / runner.run_id)
        except RunDirError as exc:
            raise GoalRejected(str(exc)) from exc
        finally:
            guard.close()
            client.close()
        if self._leftovers is not None:
            self._leftovers.hand_over(bookends)
        result = result_msg(self._action_type.Result, self._model_result_type, outcome)
        message = outcome.message
        if bookends is not None:
            message = residency_into_result(result, bookends, message)
        if outcome.status == "canceled":
            # Whoever canceled waits for the result; the history (scipy, seconds on a busy
            # machine the first time) is recorded right after it.
            threading.Thread(target=_record_history, args=(outcome.run_dir, settings),
                             name="history", daemon=False).start()
            result.summary += "; history: recorded after the result (canceled run)"
        else:
            result.summary += f"; history: {_record_history(outcome.run_dir, settings)}"
        if outcome.summary is not None and outcome.summary.machine:
            result.summary += "; " + result_platform_text(outcome.summary)
        return RunReport(result=result, status=outcome.status, message=message)

    def _guard(self, goal: ResolvedGoal, settings: NodeSettings, client: OllamaClient,
               results_root: Path, relay: PhaseRelay) -> RunMemoryGuard:
        policy = settings.policy_settings(preset=goal.preset, order=policy_order(goal.order))
        if goal.keep_alive_override is not None:
            policy = policy.replace(keep_alive=goal.keep_alive_override)
        results_root.mkdir(parents=True, exist_ok=True)
        # The CLI's state folder: measured footprints, action costs and the memory calibration
        # are shared with the CLI and kept between runs.
        state = str(settings["state_dir"])
        cache_path = footprint_cache_path(state)
        sources = settings.memory_source_settings()
        server = server_key_of(self._stack.backend, client)  # values kept for this server only
        guard = RunMemoryGuard(
            since_s=time.time(), policy=MemoryPolicy(policy), monitor=self._stack.monitor,
            backend=self._stack.backend, client=client,
            footprint_cache=footprint_cache_for(cache_path, self._stack.monitor.model_memory,
                                                server),
            management_costs=ManagementCosts(management_costs_path(state), server),
            on_phase=relay.phase,
            cache_dropper=(CacheDropper(path=sources.drop_caches_path)
                           if policy.drop_caches == "auto" else None),
            calibration_store=CalibrationStore(calibration_path_beside(cache_path), server),
            ros_pids=ros_pids_of(self._stack.headroom),
            memory_scale=settings.simulated_machine().memory_scale)
        apply_stored(guard)
        return guard


def residency_into_result(result: Any, bookends: RunBookends, message: str) -> str:
    """Fill the result's still-loaded and found-loaded fields; the run message with its cause."""
    start, end = bookends.start, bookends.end
    if start is not None:
        result.found_loaded_models = list(start.found_loaded)
        result.found_loaded_action = start.action if start.found_loaded else ""
        if start.container_problem:
            message = f"{message} ({start.container_problem})" if message else \
                start.container_problem
    if end is not None:
        pairs = left_loaded(end.to_dict())
        result.still_loaded_models = [m for m, _ in pairs]
        result.still_loaded_reasons = [r for _, r in pairs]
        result.summary += "; " + left_loaded_text(end.to_dict())
    return message
