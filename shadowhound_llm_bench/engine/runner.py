"""
The benchmark run: models in order, load, warm-up, measured repetitions, reports as it goes.

Memory is never decided here: the runner asks the MemoryGuard before, during and after each model
(guard=None means no memory management and no memory records). Every finished test and every model
event is appended to tests.jsonl before the next step, so a kill loses nothing measured.

When the guard's plan puts several models in one batch (parallel testing of small models), they
are admitted together, loaded one after another, tested at the same time (a thread per model)
and finished one by one; their records name the models they ran beside (concurrent_with).

The steps live beside this module: model_testing (one model), model_requests (its requests and
their records), side_by_side (a batch), run_recording (the log) and run_progress (the progress).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..adapters.ollama_client import OllamaClient, OllamaError
from ..core.platform.canary import CanaryResult, canary_verdict
from ..core.ollama.model_metadata import find_tag
from ..core.runs.progress import Phase, ProgressSink
from ..core.settings.run_options import RunOptions
from ..core.runs.run_status import run_status
from ..core.runs.run_records import (
    ModelStatus, RunStatus, RunSummary, completed_models, utc_now_iso)
from ..core.runs.suite import Suite
from ..reports.jsonl_log import LOG_NAME, read_records
from ..reports.render import ReportPaths, load_summary, render_plot_later, render_reports
from ..reports.run_dir import RunDirError, create_run_dir, make_run_id, run_dir_for
from .canary import run_canary
from .cancellation import CancelToken
from .memory_guard_api import MemoryGuard, PlannedModel, RunPlan, Skip
from .model_requests import ModelRequests
from .model_testing import ModelTester
from .platform_log import PlatformLog
from .platform_monitor import PlatformMonitor
from .run_parts import RunParts
from .run_progress import RunProgress
from .run_recording import RunRecorder
from .side_by_side import SideBySide

# Most bytes one run's tests.jsonl may hold (the reports are built from it): ~2000 x the largest
# test record (OUTPUT_KEEP_CHARS of answer in model_requests, metrics, scores); a bigger run stops
# with the reason.
MAX_RUN_LOG_BYTES = 256 * 1024 * 1024


@dataclass
class RunOutcome:
    """How a run ended, where its reports are, and the summary they were built from."""

    run_id: str
    status: str  # ok | failed | canceled | aborted | planned
    message: str = ""
    run_dir: Optional[Path] = None
    reports: Optional[ReportPaths] = None
    summary: Optional[RunSummary] = None
    plan: Optional[RunPlan] = None


class BenchmarkRunner:
    """Runs a suite over models against one Ollama server; one instance per run."""

    def __init__(self, *, client: OllamaClient, guard: Optional[MemoryGuard],
                 options: RunOptions, suite: Suite, results_root: Union[str, Path],
                 run_id: Optional[str] = None, run_name: Optional[str] = None,
                 resume: bool = False, on_progress: Optional[ProgressSink] = None,
                 cancel: Optional[threading.Event] = None, note: str = "",
                 preset: str = "", platform: Optional[PlatformMonitor] = None) -> None:
        self.client = client
        self.guard = guard
        self.options = options
        self.suite = suite
        self.results_root = Path(results_root)
        self.resume = resume
        if resume and not run_id:
            raise RunDirError("resuming needs the run id of the earlier run")
        self.run_id = run_id or make_run_id(run_name)
        if resume:
            run_dir_for(self.results_root, self.run_id)  # validates before anything runs
        self.on_progress = on_progress
        self._finished = threading.Event()
        # A cancel cuts the request in flight and every wait of the guard at once.
        self.cancel = CancelToken.following(cancel, until=self._finished)
        self.cancel.on_cancel(self._cut_in_flight)
        if guard is not None and hasattr(guard, "attach_cancel"):
            guard.attach_cancel(self.cancel)
        self.note = note
        self.preset = preset
        self.platform = PlatformLog(platform) if platform is not None else None
        self.progress = RunProgress(on_progress, guard)
        self.recorder = RunRecorder(guard, self.platform)
        parts = RunParts(client=client, guard=guard, options=options, suite=suite,
                         cancel=self.cancel, progress=self.progress, recorder=self.recorder)
        self.requests = ModelRequests(parts)
        self.tester = ModelTester(parts, self.requests)
        self.side_by_side = SideBySide(parts, self.tester, self.requests)
        if guard is not None and getattr(guard, "on_phase", "absent") is None:
            # Restarts and waits for memory happen inside the guard: show them as progress too.
            setattr(guard, "on_phase", self.progress.guard_phase)

    def _cut_in_flight(self, reason: str) -> None:
        """Cancel: cut every request in flight (the guard sends its unload afterwards)."""
        self.client.interrupt(cause="canceled", reason=reason)

    def _emit(self, phase: Phase, model: str, index: int, within: float, status: str) -> None:
        self.progress.emit(phase, model, index, within, status)

    def _write(self, kind: str, **fields: Any) -> None:
        self.recorder.write(kind, **fields)

    # ------------------------------------------------------------------ plan
    def plan(self, models: Sequence[str]) -> RunPlan:
        """Plan the run without changing anything (the guard's plan, or sizes when unguarded)."""
        if self.guard is not None:
            return self.guard.plan(models)
        try:
            tags = self.client.tags()
        except OllamaError:
            tags = []
        planned = []
        for model in models:
            tag = find_tag(tags, model)
            size = int(tag.get("size") or 0) if tag else 0
            planned.append(PlannedModel(
                model=model, predicted_footprint_bytes=size,
                prediction_source="metadata" if tag else "unknown", actions_before=[],
                predicted_peak_bytes=size,
                skip_reason="" if tag else "not on the server (would be pulled)"))
        return RunPlan(preset="none (no memory management)", models=planned,
                       batches=[[m] for m in models],
                       predicted_peak_bytes=max((p.predicted_peak_bytes for p in planned),
                                                default=0),
                       predicted_unloads=0, predicted_restarts=0, model_budget_bytes=0)

    # ------------------------------------------------------------------ run
    def run(self, models: Sequence[str]) -> RunOutcome:
        """Run the suite over the models; always writes the reports, also on cancel or failure."""
        run_dir = self._open_run_dir()
        previous: List[Dict[str, Any]] = []
        if self.resume:
            previous, _ = read_records(run_dir / LOG_NAME)
            self.recorder.session = 1 + sum(1 for r in previous if r.get("type") == "run_start")
            if not models:
                earlier: List[str] = []
                for r in previous:
                    if r.get("type") == "run_start":
                        earlier += [str(m) for m in r.get("models") or []]
                models = earlier
        models = list(dict.fromkeys(models))
        if not models:
            raise ValueError("no models to benchmark")
        self.recorder.open(run_dir / LOG_NAME, max_bytes=MAX_RUN_LOG_BYTES)
        # The first plot of a process costs seconds (imports, fonts): pay it while the run goes,
        # so a canceled run's partial reports come back within a second.
        threading.Thread(target=_warm_up_plotting, name="plot-warm-up", daemon=True).start()
        try:
            status, message = self._run(models, previous)
        except Exception as exc:  # record why the run broke, then still write the reports
            self._write("run_end", status=RunStatus.FAILED.value,
                        message=f"run failed: {type(exc).__name__}: {exc}")
            self.recorder.close()
            render_reports(run_dir)
            raise
        finally:
            self._finished.set()
        self.recorder.close()
        self._emit(Phase.REPORTING, "", self.progress.model_count, 0.0, "writing reports")
        if status is RunStatus.CANCELED:
            # Whoever canceled waits for the result: the plot follows a moment later.
            paths = render_reports(run_dir, plot=False)
            render_plot_later(run_dir)
        else:
            paths = render_reports(run_dir)
        summary = load_summary(run_dir)
        self._emit(Phase.DONE, "", self.progress.model_count, 1.0,
                   f"run {status.value}: {message}")
        return RunOutcome(run_id=self.run_id, status=status.value, message=message,
                          run_dir=run_dir, reports=paths, summary=summary)

    def _open_run_dir(self) -> Path:
        if self.resume:
            run_dir = run_dir_for(self.results_root, self.run_id)
            if not (run_dir / LOG_NAME).is_file():
                raise RunDirError(f"cannot resume {self.run_id}: {run_dir / LOG_NAME} not found")
            return run_dir
        run_dir = create_run_dir(self.results_root, self.run_id)
        self.run_id = run_dir.name
        return run_dir

    def _run(self, models: List[str], previous: List[Dict[str, Any]]) -> tuple:
        self.progress.model_count = len(models)
        self._emit(Phase.PLANNING, "", 0, 0.0, f"planning {len(models)} model(s)")
        try:
            version = self.client.version()
            self.requests.tags = self.client.tags()
        except OllamaError as exc:
            self._write("run_start", run_id=self.run_id, host=self.client.base_url,
                        ollama_version="", options=self.options.to_dict(),
                        suite=self.suite.to_dict(), models=models,
                        guarded=self.guard is not None, note=self.note)
            message = f"Ollama at {self.client.base_url} is not usable: {exc}"
            self._write("run_end", status=RunStatus.FAILED.value, message=message)
            return RunStatus.FAILED, message
        self._write("run_start", run_id=self.run_id, host=self.client.base_url,
                    ollama_version=version, options=self.options.to_dict(),
                    suite=self.suite.to_dict(), models=models, guarded=self.guard is not None,
                    note=self.note, preset=self.preset, resumed=self.resume)
        self._write_machine("start", version)
        done_before = set(completed_models(previous))
        calibrate = getattr(self.guard, "calibrate", None)
        if calibrate is not None:
            self._emit(Phase.PLANNING, "", 0, 0.0, "checking which memory sources track models")
            calibrate(models, force=self.options.calibrate_memory_sources)
        plan = self.plan(models)
        self._write("plan", plan=plan)
        order = [p.model for p in plan.models] or models
        order += [m for m in models if m not in order]
        index_of = {model: index for index, model in enumerate(order)}
        canary_before = self._canary("before")
        canceled = False
        ended_by_robot = ""
        statuses: List[ModelStatus] = []
        for batch in _batches(plan, order):
            if self.cancel.is_set():
                canceled = True
                break
            todo = []
            for model in batch:
                if model in done_before:
                    self._emit(Phase.TESTING, model, index_of[model], 1.0,
                               f"{model}: already complete in this run's log, skipped")
                else:
                    todo.append(model)
            if len(todo) > 1 and self.guard is not None:
                batch_statuses = self.side_by_side.run_batch(todo, index_of)
            else:
                batch_statuses = []
                for model in todo:
                    if batch_statuses and self.cancel.is_set():
                        batch_statuses.append(ModelStatus.CANCELED)
                        break
                    batch_statuses.append(self.tester.run_model(model, index_of[model]))
            statuses += batch_statuses
            if ModelStatus.CANCELED in batch_statuses:
                canceled = True
                break
            ended_by_robot = self._after_preemption()
            if ended_by_robot:
                break
        canceled = canceled or self.cancel.is_set()  # e.g. during the last model's unload
        canary_after = None if canceled else self._canary("after")
        verdict = None
        if canary_before is not None or canary_after is not None:
            verdict = canary_verdict(
                canary_before, canary_after,
                min_decode_tokens_per_s=self.options.canary_min_decode_tokens_per_s,
                max_slowdown_percent=self.options.canary_slowdown_percent)
        self.recorder.write_memory()
        self._write_machine("end", version)
        if ended_by_robot and not canceled:
            status, message = RunStatus.ABORTED, f"ended for the robot: {ended_by_robot}"
        else:
            status, message = run_status(statuses, canceled=canceled,
                                         already_complete=len(done_before & set(models)))
        self._write("run_end", status=status.value, message=message,
                    canary=verdict.to_dict() if verdict else None)
        return status, message

    def _write_machine(self, when: str, version: str) -> None:
        self.recorder.write_machine(
            when, version,
            bandwidth_override_bytes_per_s=self.options.memory_bandwidth_bytes_per_s)

    def _after_preemption(self) -> str:
        """Ask the guard what follows a preemption (wait, go on); the reason when the run ends."""
        follow = getattr(self.guard, "after_preemption", None) if self.guard else None
        if follow is None or self.cancel.is_set():
            return ""
        reason = str(follow() or "")
        self.recorder.write_memory()
        return reason

    # ------------------------------------------------------------------ canary
    def _canary(self, when: str) -> Optional[CanaryResult]:
        model = self.options.canary_model
        if not model:
            return None
        last = self.progress.model_count - 1
        self._emit(Phase.TESTING, model, 0 if when == "before" else last,
                   0.0 if when == "before" else 1.0, f"canary {when} the run: {model}")
        if self.guard is not None:
            decision = self.guard.before_model(model)
            if isinstance(decision, Skip):
                result = CanaryResult(model=model, decode_tokens_per_s=None,
                                      error=f"skipped by memory management: {decision.reason}")
                self._write("canary", when=when, **result.to_dict())
                return result
        started = utc_now_iso()
        result = run_canary(self.client, options=self.options)
        ended = utc_now_iso()  # its window for the platform readings, before the unload
        if self.guard is not None:
            self.guard.after_model(model)
        self._write("canary", when=when, started=started, ended=ended, **result.to_dict())
        return result


def _batches(plan: RunPlan, order: Sequence[str]) -> List[List[str]]:
    """Return the plan's batches in run order; models the plan left out run on their own."""
    known = set(order)
    batches: List[List[str]] = []
    seen: set = set()
    for batch in plan.batches or []:
        members = [m for m in dict.fromkeys(batch) if m in known and m not in seen]
        if members:
            batches.append(members)
            seen.update(members)
    batches += [[m] for m in order if m not in seen]
    return batches


def _warm_up_plotting() -> None:
    """Draw one tiny figure off the run's thread (memory.png is drawn at the end of every run)."""
    try:
        import io

        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        figure = Figure(figsize=(1, 1), dpi=10)
        figure.add_subplot(1, 1, 1).plot([0, 1], [0, 1], label="warm-up")
        figure.savefig(io.BytesIO(), format="png")
    except Exception:  # no matplotlib: the reports say so themselves
        pass
