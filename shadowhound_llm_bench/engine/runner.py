"""
The benchmark run: models in order, load, warm-up, measured repetitions, reports as it goes.

Memory is never decided here: the runner asks the MemoryGuard before, during and after each model
(guard=None means no memory management and no memory records). Every finished test and every model
event is appended to tests.jsonl before the next step, so a kill loses nothing measured.

When the guard's plan puts several models in one batch (parallel testing of small models), they
are admitted together, loaded one after another, tested at the same time (a thread per model)
and finished one by one; their records name the models they ran beside (concurrent_with).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..adapters.ollama_client import (
    ModelNotFound, OllamaClient, OllamaError, OllamaInterrupted, OllamaUnavailable)
from ..core.platform.canary import CanaryResult, canary_verdict
from ..core.ollama.model_metadata import ModelMetadata, find_tag, metadata_from, same_model
from ..core.decider.decision import Action
from ..core.decider.policy import MemoryPolicy
from ..core.decider.policy_settings import PolicySettings
from ..core.runs.progress import Phase, ProgressEvent, ProgressSink
from ..core.ollama.request_metrics import cut_short, metrics_from_capture
from ..core.settings.run_options import KeepAlive, RunOptions
from ..core.runs.run_status import run_status
from ..core.runs.run_records import (
    ErrorKind, ModelStatus, RunStatus, RunSummary, completed_models, record, to_jsonable,
    utc_now_iso)
from ..core.runs.scoring import score_output
from ..core.runs.suite import Suite, Task
from ..reports.jsonl_log import LOG_NAME, JsonlLog, read_records
from ..reports.render import ReportPaths, load_summary, render_plot_later, render_reports
from ..reports.run_dir import RunDirError, create_run_dir, make_run_id, run_dir_for
from .canary import run_canary
from .cancellation import CancelToken
from .load_failure import load_failure_fields, oom_kill_count
from .memory_guard_api import MemoryGuard, PlannedModel, Proceed, RunPlan, Skip
from .platform_log import PlatformLog
from .platform_monitor import PlatformMonitor

OUTPUT_KEEP_CHARS = 4000
# Most bytes one run's tests.jsonl may hold (the reports are built from it): ~2000 x the largest
# test record (OUTPUT_KEEP_CHARS of answer, metrics, scores); a bigger run stops with the reason.
MAX_RUN_LOG_BYTES = 256 * 1024 * 1024
MAX_LOAD_ATTEMPTS = 5  # hard cap, whatever a guard says
# Without memory management nothing can be recovered: give up as the default policy would.
_UNGUARDED_POLICY = MemoryPolicy(PolicySettings(restart_when_unreachable=False))


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


class _ModelStop(Exception):
    """Ends the current model early with a status and reason (unavailable: no server answered)."""

    def __init__(self, status: ModelStatus, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.unavailable = unavailable


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
        self._log: Optional[JsonlLog] = None
        self._session = 1
        self._model_count = 0
        self._readings_written = 0
        self._decisions_written = 0
        self._tags: List[Dict[str, Any]] = []
        self._current_index = 0
        self._current_within = 0.0
        self._last_progress = 0.0
        self._emit_lock = threading.RLock()
        self._memory_lock = threading.Lock()
        self._batch_start = 0
        self._batch_within: Dict[str, float] = {}  # model -> share done, while a batch runs
        self._server_lost: Dict[str, int] = {}  # model -> times the server vanished during it
        self._interrupts: Dict[str, OllamaInterrupted] = {}  # model -> its cut request
        if guard is not None and getattr(guard, "on_phase", "absent") is None:
            # Restarts and waits for memory happen inside the guard: show them as progress too.
            setattr(guard, "on_phase", self._guard_phase)

    def _cut_in_flight(self, reason: str) -> None:
        """Cancel: cut every request in flight (the guard sends its unload afterwards)."""
        self.client.interrupt(cause="canceled", reason=reason)

    def _guard_phase(self, phase: Phase, model: str, status: str) -> None:
        self._emit(phase, model, self._current_index, self._current_within, status)

    # ------------------------------------------------------------------ progress and log
    def _emit(self, phase: Phase, model: str, index: int, within: float, status: str) -> None:
        if self.on_progress is None:
            return
        with self._emit_lock:  # models of a batch report from their own threads
            self._emit_locked(phase, model, index, within, status)

    def _emit_locked(self, phase: Phase, model: str, index: int, within: float,
                     status: str) -> None:
        count = max(1, self._model_count)
        share = max(0.0, min(1.0, within))
        if model and phase not in (Phase.REPORTING, Phase.DONE):
            self._current_index, self._current_within = index, within
        if phase == Phase.DONE:
            progress = 1.0
        elif phase in (Phase.PLANNING,):
            progress = 0.0
        elif phase == Phase.REPORTING:
            progress = 0.99
        elif model in self._batch_within:
            # A batch advances by the sum of its models' shares.
            self._batch_within[model] = max(self._batch_within[model], share)
            progress = (self._batch_start + sum(self._batch_within.values())) / count
        else:
            progress = (min(index, count - 1) + share) / count
        # Progress never goes back (a canary or the report step after the last model).
        progress = max(self._last_progress, max(0.0, min(1.0, progress)))
        self._last_progress = progress
        memory = self.guard.latest_reading() if self.guard is not None else None
        try:
            self.on_progress(ProgressEvent(
                phase=phase, model=model, model_index=max(0, index), model_count=count,
                progress=progress, status=status, memory=memory))
        except Exception:  # a broken display must not break a measurement
            pass

    def _write(self, kind: str, **fields: Any) -> None:
        assert self._log is not None
        self._log.append(record(kind, session=self._session, **fields))

    def _write_memory(self) -> None:
        with self._memory_lock:  # models of a batch end on their own threads
            if self.platform is not None:
                self.platform.flush(self._write)
            if self.guard is not None:
                self._write_memory_locked()

    def _write_memory_locked(self) -> None:
        assert self.guard is not None
        readings = self.guard.timeline()
        decisions = self.guard.decisions()
        new_readings = readings[self._readings_written:]
        new_decisions = decisions[self._decisions_written:]
        if not new_readings and not new_decisions:
            return
        self._write("memory", readings=[_reading_dict(r) for r in new_readings],
                    decisions=new_decisions)
        self._readings_written = len(readings)
        self._decisions_written = len(decisions)

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
            self._session = 1 + sum(1 for r in previous if r.get("type") == "run_start")
            if not models:
                earlier: List[str] = []
                for r in previous:
                    if r.get("type") == "run_start":
                        earlier += [str(m) for m in r.get("models") or []]
                models = earlier
        models = list(dict.fromkeys(models))
        if not models:
            raise ValueError("no models to benchmark")
        self._log = JsonlLog(path=run_dir / LOG_NAME, max_bytes=MAX_RUN_LOG_BYTES)
        # The first plot of a process costs seconds (imports, fonts): pay it while the run goes,
        # so a canceled run's partial reports come back within a second.
        threading.Thread(target=_warm_up_plotting, name="plot-warm-up", daemon=True).start()
        try:
            status, message = self._run(models, previous)
        except Exception as exc:  # record why the run broke, then still write the reports
            self._write("run_end", status=RunStatus.FAILED.value,
                        message=f"run failed: {type(exc).__name__}: {exc}")
            self._log.close()
            render_reports(run_dir)
            raise
        finally:
            self._finished.set()
        self._log.close()
        self._emit(Phase.REPORTING, "", self._model_count, 0.0, "writing reports")
        if status is RunStatus.CANCELED:
            # Whoever canceled waits for the result: the plot follows a moment later.
            paths = render_reports(run_dir, plot=False)
            render_plot_later(run_dir)
        else:
            paths = render_reports(run_dir)
        summary = load_summary(run_dir)
        self._emit(Phase.DONE, "", self._model_count, 1.0, f"run {status.value}: {message}")
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
        self._model_count = len(models)
        self._emit(Phase.PLANNING, "", 0, 0.0, f"planning {len(models)} model(s)")
        try:
            version = self.client.version()
            self._tags = self.client.tags()
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
                batch_statuses = self._run_batch(todo, index_of)
            else:
                batch_statuses = []
                for model in todo:
                    if batch_statuses and self.cancel.is_set():
                        batch_statuses.append(ModelStatus.CANCELED)
                        break
                    batch_statuses.append(self._run_model(model, index_of[model]))
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
        self._write_memory()
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
        if self.platform is not None:
            self.platform.write_machine(
                self._write, when=when, ollama_version=version,
                bandwidth_override_bytes_per_s=self.options.memory_bandwidth_bytes_per_s,
                container=getattr(self.guard, "backend", None))

    def _after_preemption(self) -> str:
        """Ask the guard what follows a preemption (wait, go on); the reason when the run ends."""
        follow = getattr(self.guard, "after_preemption", None) if self.guard else None
        if follow is None or self.cancel.is_set():
            return ""
        reason = str(follow() or "")
        self._write_memory()
        return reason

    # ------------------------------------------------------------------ canary
    def _canary(self, when: str) -> Optional[CanaryResult]:
        model = self.options.canary_model
        if not model:
            return None
        self._emit(Phase.TESTING, model, 0 if when == "before" else self._model_count - 1,
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

    # ------------------------------------------------------------------ one model
    def _run_model(self, model: str, index: int) -> ModelStatus:
        self._emit(Phase.LOADING, model, index, 0.0, f"{model}: checking the server")
        metadata = ModelMetadata(name=model)
        status, reason = ModelStatus.OK, ""
        guard_asked = False
        started = False
        try:
            metadata = self._present_or_recover(model, index)
            self._write("model_start", model=model, index=index, metadata=metadata)
            started = True
            keep_alive: KeepAlive = self.options.keep_alive
            if self.guard is not None:
                guard_asked = True
                decision = self.guard.before_model(model)
                if isinstance(decision, Skip):
                    raise _ModelStop(ModelStatus.SKIPPED,
                                     f"memory management: {decision.reason}")
                if isinstance(decision, Proceed):
                    keep_alive = decision.keep_alive
            self._load(model, index, keep_alive)
            status, reason = self._test_model(model, index, keep_alive)
        except _ModelStop as stop:
            status, reason = stop.status, stop.reason
            if self.cancel.is_set() and status in (ModelStatus.FAILED, ModelStatus.SKIPPED):
                status, reason = ModelStatus.CANCELED, f"canceled by request ({reason})"
            if not started:
                # Ended before it was loaded (unknown, or the server gone): every model the run
                # touches has a start and an end record, so no report leaves it out.
                self._write("model_start", model=model, index=index, metadata=metadata)
        return self._end_model(model, index, status, reason, guard_asked=guard_asked)

    def _end_model(self, model: str, index: int, status: ModelStatus, reason: str, *,
                   guard_asked: bool, concurrent_with: Sequence[str] = ()) -> ModelStatus:
        """Unload through the guard (unless skipped) and write the model's end record."""
        if guard_asked and self.guard is not None and status != ModelStatus.SKIPPED:
            self._emit(Phase.UNLOADING, model, index, 0.95, f"{model}: unloading")
            self.guard.after_model(model)
        memory = self.guard.record(model) if guard_asked and self.guard is not None else None
        self._write_memory()
        extra: Dict[str, Any] = {"concurrent_with": list(concurrent_with)} \
            if concurrent_with else {}
        self._write("model_end", model=model, status=status.value, reason=reason,
                    memory=memory, **extra)
        self._emit(Phase.UNLOADING if status == ModelStatus.OK else Phase.TESTING, model, index,
                   1.0, f"{model}: {status.value}" + (f" — {reason}" if reason else ""))
        return status

    # ------------------------------------------------------------------ a batch side by side
    def _run_batch(self, models: List[str], index_of: Mapping[str, int]) -> List[ModelStatus]:
        """
        Test the models of a plan batch at the same time; statuses in the order they ended.

        Every model is admitted by the guard (holding room for its batch-mates) before any is
        loaded; the loads run one after another (as Ollama's scheduler does them), the tests in
        a thread per model, and the guard finishes each model afterwards. A model the guard will
        not admit beside the others is tested on its own after the batch.
        """
        assert self.guard is not None
        guard = self.guard
        self._batch_start = min(index_of[m] for m in models)
        with self._emit_lock:
            self._batch_within = {m: 0.0 for m in models}
        try:
            return self._run_batch_steps(models, index_of, guard)
        finally:
            with self._emit_lock:
                self._batch_within = {}

    def _run_batch_steps(self, models: List[str], index_of: Mapping[str, int],
                         guard: MemoryGuard) -> List[ModelStatus]:
        self._emit(Phase.LOADING, models[0], index_of[models[0]], 0.0,
                   f"testing side by side: {', '.join(models)}")
        statuses: List[ModelStatus] = []
        present: Dict[str, ModelMetadata] = {}
        for model in models:
            try:
                present[model] = self._ensure_present(model, index_of[model])
            except _ModelStop as stop:
                self._write("model_start", model=model, index=index_of[model],
                            metadata=ModelMetadata(name=model))
                statuses.append(self._end_model(model, index_of[model], stop.status,
                                                stop.reason, guard_asked=False))
        candidates = list(present)
        keep_alive: Dict[str, KeepAlive] = {}
        alone: List[str] = []
        for model in list(candidates):
            mates = [m for m in candidates if m != model]
            decision = guard.before_model(model, together_with=mates) if mates \
                else guard.before_model(model)
            if isinstance(decision, Skip):
                candidates.remove(model)
                if mates:
                    alone.append(model)
                    self._emit(Phase.LOADING, model, index_of[model], 0.0,
                               f"{model}: not beside {', '.join(mates)} ({decision.reason}); "
                               "tested on its own after them")
                    continue
                self._write("model_start", model=model, index=index_of[model],
                            metadata=present[model])
                statuses.append(self._end_model(
                    model, index_of[model], ModelStatus.SKIPPED,
                    f"memory management: {decision.reason}", guard_asked=True))
                continue
            keep_alive[model] = decision.keep_alive if isinstance(decision, Proceed) \
                else self.options.keep_alive
        admitted = candidates
        for model in admitted:
            self._write("model_start", model=model, index=index_of[model],
                        metadata=present[model],
                        concurrent_with=[m for m in admitted if m != model])
        ended: Dict[str, tuple] = {}
        loaded: List[str] = []
        retried = False
        for model in admitted:
            if self.cancel.is_set():
                ended[model] = (ModelStatus.CANCELED, "canceled by request")
                continue
            try:
                retried = self._load(model, index_of[model], keep_alive[model]) > 1 or retried
                loaded.append(model)
            except _ModelStop as stop:
                ended[model] = (stop.status, stop.reason)
                retried = True  # the guard may have restarted the container
        if retried and len(loaded) > 1:
            self._reload_missing(loaded, index_of, keep_alive)
        self._test_side_by_side(loaded, index_of, keep_alive, ended)
        for model in admitted:
            status, reason = ended[model]
            mates = [m for m in loaded if m != model] if model in loaded else []
            statuses.append(self._end_model(model, index_of[model], status, reason,
                                            guard_asked=True, concurrent_with=mates))
        with self._emit_lock:
            self._batch_within = {}
        for model in alone:
            if self.cancel.is_set():
                break
            statuses.append(self._run_model(model, index_of[model]))
        return statuses

    def _reload_missing(self, loaded: List[str], index_of: Mapping[str, int],
                        keep_alive: Mapping[str, KeepAlive]) -> None:
        """After a failed load (and maybe a restart), load again what Ollama no longer holds."""
        try:
            listed = [str(e.get("name") or e.get("model") or "") for e in self.client.ps()]
        except OllamaError:
            return
        for model in list(loaded):
            if any(same_model(model, name) for name in listed):
                continue
            try:
                self._load(model, index_of[model], keep_alive[model])
            except _ModelStop:
                pass  # its tests load it again on demand and record what happens

    def _test_side_by_side(self, models: List[str], index_of: Mapping[str, int],
                           keep_alive: Mapping[str, KeepAlive],
                           ended: Dict[str, tuple]) -> None:
        """Run each model's tests in its own thread; fills ended with (status, reason)."""
        errors: List[BaseException] = []

        def work(model: str) -> None:
            mates = [m for m in models if m != model]
            try:
                ended[model] = self._test_model(model, index_of[model], keep_alive[model],
                                                concurrent_with=mates)
            except BaseException as exc:  # re-raised in the calling thread below
                errors.append(exc)
                ended[model] = (ModelStatus.FAILED, f"internal error: {type(exc).__name__}: "
                                f"{exc}")

        threads = [threading.Thread(target=work, args=(m,), name=f"bench-{m}", daemon=True)
                   for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _ensure_present(self, model: str, index: int) -> ModelMetadata:
        tag = find_tag(self._tags, model)
        if tag is None:
            if not self.options.pull_missing:
                raise _ModelStop(ModelStatus.SKIPPED,
                                 f"{model} is not on the server and pulling is turned off")
            self._pull(model, index)
            try:
                self._tags = self.client.tags()
            except OllamaError as exc:
                raise _ModelStop(ModelStatus.FAILED, f"listing models after the pull: {exc}",
                                 unavailable=isinstance(exc, OllamaUnavailable))
            tag = find_tag(self._tags, model)
            if tag is None:
                raise _ModelStop(ModelStatus.SKIPPED,
                                 f"{model} is still not listed after a successful pull")
        try:
            show = self.client.show(model)
        except ModelNotFound as exc:
            raise _ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: {exc.message}")
        except OllamaError as exc:
            raise _ModelStop(ModelStatus.FAILED, f"reading {model}'s details failed: {exc}",
                             unavailable=isinstance(exc, OllamaUnavailable))
        return metadata_from(model, tag, show)

    def _present_or_recover(self, model: str, index: int) -> ModelMetadata:
        """_ensure_present; when no server answers, let the guard recover it and try once more."""
        try:
            return self._ensure_present(model, index)
        except _ModelStop as stop:
            if not stop.unavailable or not self._recover(model, index, stop.reason):
                raise
        return self._ensure_present(model, index)

    def _recover(self, model: str, index: int, reason: str) -> bool:
        """
        Report a vanished server to the guard; True when it answers again (retry the model).

        The guard asks the policy (restart the container, or give up) and carries it out; the
        runner only reports. Without a guard, or with one that cannot recover, nothing is done.
        """
        report = getattr(self.guard, "on_server_lost", None) if self.guard is not None else None
        if report is None or self.cancel.is_set():
            return False
        attempt = self._server_lost.get(model, 0) + 1
        self._server_lost[model] = attempt
        self._emit(Phase.RESTARTING, model, index, 0.05,
                   f"{model}: the server stopped answering ({reason}); asking memory "
                   "management to recover it")
        recovered = bool(report(model, reason, attempt))
        self._write_memory()
        return recovered

    def _pull(self, model: str, index: int) -> None:
        self._emit(Phase.PULLING, model, index, 0.0, f"{model}: not on the server, pulling")
        last_emit = [0.0]

        def progress(chunk: Mapping[str, Any]) -> None:
            now = time.monotonic()
            total, done = chunk.get("total"), chunk.get("completed")
            if now - last_emit[0] < 0.5 and chunk.get("status") != "success":
                return
            last_emit[0] = now
            text = str(chunk.get("status") or "")
            share = 0.0
            if isinstance(total, (int, float)) and isinstance(done, (int, float)) and total > 0:
                share = done / total
                text += f" {share * 100:.0f} % of {total / 1e9:.2f} GB"
            self._emit(Phase.PULLING, model, index, 0.04 * share, f"{model}: pull {text}")

        try:
            self.client.pull(model, on_progress=progress, deadline_s=self.options.pull_deadline_s)
        except (ModelNotFound, OllamaError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            if isinstance(exc, OllamaUnavailable):
                raise _ModelStop(ModelStatus.FAILED, f"pulling {model}: server unavailable: {exc}",
                                 unavailable=True)
            raise _ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: pull failed: {message}")

    def _load(self, model: str, index: int, keep_alive: KeepAlive) -> int:
        """Load the model (retrying as the guard says); return the attempts it took."""
        attempt = 0
        while True:
            attempt += 1
            self._emit(Phase.LOADING, model, index, 0.05,
                       f"{model}: loading (attempt {attempt})")
            started, oom_before = time.perf_counter(), oom_kill_count(self.guard)
            try:
                reply = self.client.load(model, keep_alive=keep_alive,
                                         options=self.options.ollama_options(),
                                         deadline_s=self.options.load_deadline_s)
            except OllamaError as exc:
                failure = load_failure_fields(exc, self.guard, oom_before)  # killed? OOM?
                self._write("load", model=model, ok=False, attempt=attempt,
                            client_s=time.perf_counter() - started,
                            error_kind=_error_kind(exc), **failure)
                if isinstance(exc, OllamaInterrupted):
                    raise _interrupted_stop(model, exc, "load")
                if isinstance(exc, ModelNotFound):
                    raise _ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: {exc.message}")
                if self.guard is not None:
                    retry = self.guard.on_load_failure(model, failure["error"], attempt)
                else:
                    retry = attempt < self.options.load_attempts
                if not retry or attempt >= MAX_LOAD_ATTEMPTS or self.cancel.is_set():
                    raise _ModelStop(ModelStatus.FAILED,
                                     f"load failed after {attempt} attempt(s): {exc}")
                continue
            client_s = time.perf_counter() - started
            # Ollama's load reply (done_reason "load") carries no load_duration: the load time
            # is what the client measured, unless a server reports its own.
            load_ns = reply.get("load_duration")
            self._write("load", model=model, ok=True, attempt=attempt, keep_alive=keep_alive,
                        client_s=client_s,
                        load_s=load_ns / 1e9 if isinstance(load_ns, int) and load_ns > 0
                        else client_s,
                        load_source="ollama" if isinstance(load_ns, int) and load_ns > 0
                        else "client")
            return attempt

    def _test_model(self, model: str, index: int, keep_alive: KeepAlive,
                    concurrent_with: Sequence[str] = ()) -> tuple:
        beside = f" (side by side with {', '.join(concurrent_with)})" if concurrent_with else ""
        tasks = self.suite.tasks
        total = len(tasks) * self.options.repetitions
        steps: List[tuple] = []
        if self.options.warmup:
            steps.append((tasks[0], 0, True))
        steps += [(task, rep, False) for rep in range(1, self.options.repetitions + 1)
                  for task in tasks]
        done = 0
        unavailable_in_a_row = 0
        lost_in_a_row = 0  # of those, no server answered at all (not a missing model)
        ok_tests = 0
        position = 0
        while position < len(steps):
            task, rep, warmup = steps[position]
            position += 1
            if self.cancel.is_set():
                return ModelStatus.CANCELED, "canceled by request"
            if self.guard is not None:
                abort = self.guard.check_pressure(model)
                if abort:
                    return ModelStatus.ABORTED, f"memory pressure: {abort}"
            within = 0.1 + 0.85 * done / max(1, total)
            if warmup:
                self._emit(Phase.WARMUP, model, index, 0.08,
                           f"{model}: warm-up ({task.id}){beside}")
            else:
                self._emit(Phase.TESTING, model, index, within,
                           f"{model}: {task.id} repetition {rep}/{self.options.repetitions}"
                           f"{beside}")
            if self.cancel.is_set():
                return ModelStatus.CANCELED, "canceled by request"
            ok, kind = self._run_test(model, task, rep, warmup, keep_alive, concurrent_with)
            if kind in (ErrorKind.CANCELED.value, ErrorKind.PREEMPTED.value):
                stop = _interrupted_stop(model, self._interrupts.pop(model), "stream")
                return stop.status, stop.reason
            if not warmup:
                done += 1
                ok_tests += int(ok)
            unavailable_in_a_row = unavailable_in_a_row + 1 \
                if kind in (ErrorKind.UNAVAILABLE.value, ErrorKind.MODEL_NOT_FOUND.value) else 0
            lost_in_a_row = lost_in_a_row + 1 if kind == ErrorKind.UNAVAILABLE.value else 0
            verdict = _policy_of(self.guard).on_unanswered_requests(
                model, unanswered_in_a_row=unavailable_in_a_row, no_server_in_a_row=lost_in_a_row,
                side_by_side=bool(concurrent_with))
            if verdict.action is not Action.KEEP:
                reason = "the server stopped answering during the tests"
                if verdict.action is not Action.RESTART \
                        or not self._recover(model, index, reason):
                    asked = model in self._server_lost
                    return ModelStatus.FAILED, reason + (
                        " (memory management did not bring it back)" if asked else "")
                try:
                    self._load(model, index, keep_alive)
                except _ModelStop as stop:
                    return stop.status, f"{reason}; after the restart: {stop.reason}"
                # Run again the tests the outage broke; the failed records stay in the log.
                broken = steps[position - unavailable_in_a_row:position]
                done -= sum(1 for _, _, is_warmup in broken if not is_warmup)
                position -= unavailable_in_a_row
                unavailable_in_a_row = lost_in_a_row = 0
        if ok_tests == 0:
            return ModelStatus.FAILED, "every measured test failed"
        return ModelStatus.OK, ""

    def _run_test(self, model: str, task: Task, rep: int, warmup: bool,
                  keep_alive: KeepAlive, concurrent_with: Sequence[str] = ()) -> tuple:
        fields: Dict[str, Any] = {"model": model, "task": task.id, "repetition": rep,
                                  "warmup": warmup}
        if concurrent_with:
            # Measured while other models ran on the same machine: not a solo number.
            fields["concurrent_with"] = list(concurrent_with)
        fields["started"] = utc_now_iso()  # with the record's stamp: when the test ran
        try:
            capture = self.client.generate_stream(
                model, task.render_prompt(), deadline_s=self.options.request_deadline_s,
                options=self.options.ollama_options(), keep_alive=keep_alive,
                system=task.system or None, stall_s=self.options.stream_stall_s)
        except OllamaError as exc:
            if isinstance(exc, OllamaInterrupted):
                self._interrupts[model] = exc
            partial = exc.capture
            self._write("test", status="failed", error_kind=_error_kind(exc), error=str(exc),
                        metrics=metrics_from_capture(partial) if partial else None,
                        output=(partial.text[:OUTPUT_KEEP_CHARS] if partial else ""), **fields)
            return False, _error_kind(exc)
        metrics = metrics_from_capture(capture)  # an early end is cut short too, for scoring
        score = score_output(task, capture.text, truncated=cut_short(metrics))
        self._write("test", status="ok", metrics=metrics, score=score,
                    output=capture.text[:OUTPUT_KEEP_CHARS],
                    thinking_chars=len(capture.thinking), **fields)
        if self.platform is not None:
            with self._memory_lock:
                self.platform.flush(self._write)
        return True, ""


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


def _policy_of(guard: Optional[MemoryGuard]) -> MemoryPolicy:
    """Return the guard's policy (the one decider), or the unguarded default."""
    policy = getattr(guard, "policy", None)
    return policy if isinstance(policy, MemoryPolicy) else _UNGUARDED_POLICY


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


def _interrupted_stop(model: str, exc: OllamaInterrupted, during: str) -> _ModelStop:
    """End a model whose request was cut: canceled, or aborted for the robot."""
    if exc.cause == "preempted":
        return _ModelStop(ModelStatus.ABORTED, f"preempted during the {during} of {model}: "
                          f"{exc}")
    return _ModelStop(ModelStatus.CANCELED, f"canceled during the {during} of {model}")


def _error_kind(exc: OllamaError) -> str:
    if isinstance(exc, ModelNotFound):
        return ErrorKind.MODEL_NOT_FOUND.value
    return getattr(exc, "kind", ErrorKind.ERROR.value)


def _reading_dict(reading: Any) -> Dict[str, Any]:
    data = to_jsonable(reading)
    if hasattr(reading, "pressure_percent"):
        data["pressure_percent"] = reading.pressure_percent
    return data
