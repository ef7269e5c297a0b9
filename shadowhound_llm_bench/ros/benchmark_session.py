"""One benchmark goal turned into a runner over the node's memory stack, and its result message."""

from __future__ import annotations

import threading
from pathlib import Path
import time
from typing import Any, Callable, List, Optional

from ..adapters.ollama_client import OllamaClient
from ..core.goal_validation import GoalRejected, ResolvedGoal, suite_path_dirs
from ..core.node_settings import NodeSettings, policy_order
from ..core.memory_reading import MemoryReading
from ..core.policy import MemoryPolicy
from ..core.progress import Phase, ProgressEvent, ProgressSink
from ..core.suite import SuiteError, load_suite
from ..engine.footprint_cache import FootprintCache
from ..adapters.memory_sources import CacheDropper
from ..engine.memory_calibration import CalibrationStore, apply_stored, calibration_path_beside
from ..engine.memory_guard import PolicyMemoryGuard
from ..engine.oom_backstop import ros_pids_of
from ..engine.runner import BenchmarkRunner
from ..reports.history_db import HistoryError, default_history_db_path
from ..reports.history_recording import record_finished_run
from ..reports.run_dir import RunDirError
from ..reports.run_snapshot_reader import RunLoadError
from .action_server import RunReport
from .memory_stack import MemoryStack
from .messages import plan_result_msg, result_msg

FOOTPRINT_CACHE_NAME = "footprint_cache.json"


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
        self._stop.set()
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
    if run_dir is None:
        return "not recorded (no run folder)"
    db_path = str(settings["history_db"]).strip()
    try:
        check = record_finished_run(run_dir, db_path=Path(db_path).expanduser() if db_path
                                    else default_history_db_path())
    except (RunLoadError, HistoryError, OSError) as exc:
        return f"not recorded: {exc}"
    return check.summary


class BenchmarkSession:
    """Runs goals for the action server: builds client, guard and runner per goal."""

    def __init__(self, *, stack: MemoryStack, action_type: type,
                 model_result_type: type) -> None:
        self._stack = stack
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
                preset=goal.preset, note="started by the llm_bench ROS node")
            if goal.dry_run:
                plan = runner.plan(goal.models)
                return RunReport(result=plan_result_msg(self._action_type.Result, plan),
                                 status="planned")
            outcome = runner.run(goal.models)
        except RunDirError as exc:
            raise GoalRejected(str(exc)) from exc
        finally:
            guard.close()
            client.close()
        result = result_msg(self._action_type.Result, self._model_result_type, outcome)
        result.summary += f"; history: {_record_history(outcome.run_dir, settings)}"
        return RunReport(result=result, status=outcome.status)

    def _guard(self, goal: ResolvedGoal, settings: NodeSettings, client: OllamaClient,
               results_root: Path, relay: PhaseRelay) -> RunMemoryGuard:
        policy = settings.policy_settings(preset=goal.preset, order=policy_order(goal.order))
        if goal.keep_alive_override is not None:
            policy = policy.replace(keep_alive=goal.keep_alive_override)
        results_root.mkdir(parents=True, exist_ok=True)
        cache_path = str(results_root / FOOTPRINT_CACHE_NAME)
        sources = settings.memory_source_settings()
        guard = RunMemoryGuard(
            since_s=time.time(), policy=MemoryPolicy(policy), monitor=self._stack.monitor,
            backend=self._stack.backend, client=client,
            footprint_cache=FootprintCache(cache_path), on_phase=relay.phase,
            cache_dropper=(CacheDropper(path=sources.drop_caches_path)
                           if policy.drop_caches == "auto" else None),
            calibration_store=CalibrationStore(calibration_path_beside(cache_path)),
            ros_pids=ros_pids_of(self._stack.headroom))
        apply_stored(guard)
        return guard
