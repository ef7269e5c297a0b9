"""
The run log's records (one JSON object per line) and the run summary rebuilt from them alone.

tests.jsonl is the source of truth: every report is derived from it, so a report written after a
crash or a cancel agrees with what was measured. A resumed run appends a new session; for each
model the records of the latest session that started it count.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..platform.platform_summary import machine_bandwidth, platform_summary
from .recommendation import Candidate, recommend
from ..ollama.request_metrics import AGGREGATED_METRICS
from ..platform.roofline import roofline_efficiency_percent
from .stats import summarize

SCHEMA_VERSION = 1


class ErrorKind(str, Enum):
    """Why a request failed; a failure is never counted as a success."""

    HTTP_ERROR = "http_error"
    STREAM_ERROR = "stream_error"
    TIMEOUT = "timeout"
    EMPTY_OUTPUT = "empty_output"
    UNAVAILABLE = "unavailable"
    MODEL_NOT_FOUND = "model_not_found"
    STALLED = "stalled"  # a stream went silent for longer than its stall limit
    CANCELED = "canceled"  # cut by a cancel request
    PREEMPTED = "preempted"  # cut because the robot needed the memory
    ERROR = "error"


class ModelStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    ABORTED = "aborted"
    CANCELED = "canceled"


class RunStatus(str, Enum):
    OK = "ok"
    PARTIAL = "partial"  # some models tested, others skipped or failed (core/runs/run_status.py)
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"
    PLANNED = "planned"
    INCOMPLETE = "incomplete"  # the log has no end: the run crashed or was killed


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and non-finite floats made JSON-safe (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record(kind: str, *, session: int, **fields: Any) -> Dict[str, Any]:
    """One log record: its type, session and wall-clock stamp, then its fields."""
    out: Dict[str, Any] = {"type": kind, "session": session, "stamp": utc_now_iso()}
    out.update(to_jsonable(fields))
    return out


# ---------------------------------------------------------------------------------------- summary
@dataclass
class TaskResult:
    """One task of one model over its measured repetitions."""

    task: str
    tests_ok: int = 0
    tests_failed: int = 0
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)  # name -> Stats dict
    score: Optional[Dict[str, float]] = None  # Stats of the score percent
    truncated: int = 0
    ended_early: int = 0  # ok tests whose stream the server ended early (repeat limit, UTF-8)
    last_score_items: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelResult:
    """Everything measured for one model, with its memory record when a guard ran."""

    model: str
    status: str = ModelStatus.FAILED.value
    reason: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)
    tests_ok: int = 0
    tests_failed: int = 0
    warmup_ok: Optional[bool] = None
    failures: List[Dict[str, Any]] = field(default_factory=list)
    tasks: List[TaskResult] = field(default_factory=list)
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)  # over all tasks
    quality_score: Optional[float] = None
    truncated: int = 0
    ended_early: int = 0  # ok tests whose stream the server ended early (a looping model)
    load: Dict[str, Any] = field(default_factory=dict)
    roofline_percent: Optional[float] = None
    memory: Optional[Dict[str, Any]] = None
    session: int = 0
    # Models tested at the same time as this one (parallel small-model testing): its speed was
    # measured while they shared the machine.
    concurrent_with: List[str] = field(default_factory=list)
    # Power and energy per phase and J/token (core/platform/energy_accounting); None: not measured.
    energy: Optional[Dict[str, Any]] = None

    def median(self, metric: str) -> Optional[float]:
        stats = self.metrics.get(metric)
        return stats.get("median") if stats else None


@dataclass
class RunSummary:
    """A run as the reports show it."""

    run_id: str
    status: str
    message: str = ""
    started_at: str = ""
    ended_at: str = ""
    host: str = ""
    ollama_version: str = ""
    options: Dict[str, Any] = field(default_factory=dict)
    suite: Dict[str, Any] = field(default_factory=dict)
    models_requested: List[str] = field(default_factory=list)
    guarded: bool = False
    note: str = ""
    sessions: int = 0
    plan: Optional[Dict[str, Any]] = None
    canary: Dict[str, Any] = field(default_factory=dict)
    models: List[ModelResult] = field(default_factory=list)
    recommendation: Dict[str, Any] = field(default_factory=dict)
    readings: List[Dict[str, Any]] = field(default_factory=list)
    decisions: List[Dict[str, Any]] = field(default_factory=list)
    peak_working_set_bytes: int = 0
    machine: Dict[str, Any] = field(default_factory=dict)
    platform: Dict[str, Any] = field(default_factory=dict)
    platform_samples: List[Dict[str, Any]] = field(default_factory=list)
    # What Ollama held at the run's start and end (engine/run_bookends.py), by "start" / "end".
    residency: Dict[str, Any] = field(default_factory=dict)
    # The run against the history database: previous comparable runs and regressions.
    history: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Return the results JSON (versioned schema)."""
        return to_jsonable({
            "schema_version": SCHEMA_VERSION,
            "run": {
                "run_id": self.run_id, "status": self.status, "message": self.message,
                "started_at": self.started_at,
                "ended_at": self.ended_at, "host": self.host,
                "ollama_version": self.ollama_version, "suite": self.suite.get("name", ""),
                "models_requested": self.models_requested, "guarded": self.guarded,
                "note": self.note, "sessions": self.sessions,
            },
            "options": self.options,
            "suite": self.suite,
            "plan": self.plan,
            "canary": self.canary,
            "models": self.models,
            "recommendation": self.recommendation,
            "machine": self.machine,
            "platform": self.platform,
            "residency": self.residency,
            "memory": {
                "peak_working_set_bytes": self.peak_working_set_bytes,
                "readings": len(self.readings),
                "decisions": self.decisions,
            },
            "history": self.history,
        })


def _stats_dict(values: Iterable[Optional[float]]) -> Optional[Dict[str, float]]:
    stats = summarize(values)
    return stats.to_dict() if stats else None


def _metric_stats(tests: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for name in AGGREGATED_METRICS:
        stats = _stats_dict((t.get("metrics") or {}).get(name) for t in tests)
        if stats:
            out[name] = stats
    return out


def reading_working_set(reading: Mapping[str, Any]) -> int:
    container = reading.get("container") or {}
    return int(container.get("working_set_bytes") or 0)


def reading_memory_in_use(reading: Mapping[str, Any]) -> int:
    """Return what Ollama held by the run's chosen memory sources (else the working set)."""
    model_memory = reading.get("model_memory_bytes")
    return int(model_memory) if model_memory is not None else reading_working_set(reading)


def completed_models(records: Iterable[Mapping[str, Any]]) -> List[str]:
    """Models whose latest model_end says ok: a resumed run skips them."""
    latest: Dict[str, str] = {}
    for rec in records:
        if rec.get("type") == "model_end":
            latest[str(rec.get("model"))] = str(rec.get("status"))
    return [m for m, status in latest.items() if status == ModelStatus.OK.value]


def _model_result(model: str, recs: List[Mapping[str, Any]], *,
                  bandwidth: Optional[float]) -> ModelResult:
    result = ModelResult(model=model, session=int(recs[0].get("session") or 0) if recs else 0)
    tests: List[Mapping[str, Any]] = []
    end: Optional[Mapping[str, Any]] = None
    for rec in recs:
        kind = rec.get("type")
        if kind == "model_start":
            result.metadata = dict(rec.get("metadata") or {})
            result.concurrent_with = [str(m) for m in rec.get("concurrent_with") or []]
        elif kind == "load":
            result.load = {k: rec.get(k) for k in
                           ("ok", "attempt", "client_s", "load_s", "load_source", "error_kind",
                            "error")}
        elif kind == "test":
            if rec.get("warmup"):
                result.warmup_ok = rec.get("status") == "ok"
                continue
            tests.append(rec)
        elif kind == "model_end":
            end = rec
    ok_tests = [t for t in tests if t.get("status") == "ok"]
    failed = [t for t in tests if t.get("status") != "ok"]
    result.tests_ok = len(ok_tests)
    result.tests_failed = len(failed)
    result.failures = [{"task": t.get("task"), "repetition": t.get("repetition"),
                        "kind": t.get("error_kind"), "error": t.get("error")} for t in failed]
    task_ids: List[str] = []
    for t in tests:
        if t.get("task") not in task_ids:
            task_ids.append(str(t.get("task")))
    task_scores: List[float] = []
    for task_id in task_ids:
        mine = [t for t in tests if t.get("task") == task_id]
        good = [t for t in mine if t.get("status") == "ok"]
        scores = [(t.get("score") or {}).get("percent") for t in good]
        last_items = list((good[-1].get("score") or {}).get("items") or []) if good else []
        task = TaskResult(task=task_id, tests_ok=len(good), tests_failed=len(mine) - len(good),
                          metrics=_metric_stats(good), score=_stats_dict(scores),
                          truncated=sum(1 for t in good
                                        if (t.get("metrics") or {}).get("truncated")),
                          ended_early=sum(1 for t in good
                                          if (t.get("metrics") or {}).get("ended_early")),
                          last_score_items=last_items)
        if task.score:
            task_scores.append(task.score["mean"])
        result.tasks.append(task)
    result.metrics = _metric_stats(ok_tests)
    result.truncated = sum(t.truncated for t in result.tasks)
    result.ended_early = sum(t.ended_early for t in result.tasks)
    if task_scores:
        result.quality_score = sum(task_scores) / len(task_scores)
    result.roofline_percent = roofline_efficiency_percent(
        decode_tokens_per_s=result.median("decode_tokens_per_s"),
        bandwidth_bytes_per_s=bandwidth,
        model_size_bytes=int(result.metadata.get("size_bytes") or 0))
    if end is not None:
        result.status = str(end.get("status") or ModelStatus.FAILED.value)
        result.reason = str(end.get("reason") or "")
        result.memory = end.get("memory")
        # What really ran beside it (a batch-mate that failed to load did not).
        result.concurrent_with = [str(m) for m in end.get("concurrent_with") or []]
    elif recs:
        result.status = ModelStatus.FAILED.value
        result.reason = "run ended before this model finished (crash or kill)"
    return result


def _add_energy_metrics(result: ModelResult) -> None:
    """Add j_per_token statistics over the measured tests (per task and over all tasks)."""
    tests = (result.energy or {}).get("tests") or []
    stats = _stats_dict(t.get("j_per_token") for t in tests)
    if stats:
        result.metrics["j_per_token"] = stats
    for task in result.tasks:
        task_stats = _stats_dict(t.get("j_per_token") for t in tests
                                 if t.get("task") == task.task)
        if task_stats:
            task.metrics["j_per_token"] = task_stats


def summarize_run(records: Sequence[Mapping[str, Any]]) -> RunSummary:
    """Rebuild the whole run from its log records."""
    starts = [r for r in records if r.get("type") == "run_start"]
    if not starts:
        raise ValueError("the log has no run_start record")
    first, last = starts[0], starts[-1]
    options = dict(last.get("options") or {})
    summary = RunSummary(
        run_id=str(first.get("run_id") or ""), status=RunStatus.INCOMPLETE.value,
        started_at=str(first.get("stamp") or ""), host=str(last.get("host") or ""),
        ollama_version=str(last.get("ollama_version") or ""), options=options,
        suite=dict(last.get("suite") or {}), guarded=bool(last.get("guarded")),
        note=str(last.get("note") or ""), sessions=len(starts),
    )
    requested: List[str] = []
    for start in starts:
        for model in start.get("models") or []:
            if model not in requested:
                requested.append(str(model))
    summary.models_requested = requested
    latest_session: Dict[str, int] = {}
    for rec in records:
        kind = rec.get("type")
        if kind == "run_start":
            summary.status = RunStatus.INCOMPLETE.value
            summary.message = ""
            summary.ended_at = ""
            summary.history = {}
        elif kind in ("model_start", "model_end"):
            # An end without a start (a log of an older version) still names the model.
            latest_session[str(rec.get("model"))] = int(rec.get("session") or 0)
        elif kind == "plan":
            summary.plan = rec.get("plan")
        elif kind == "canary":
            summary.canary[str(rec.get("when"))] = {
                k: v for k, v in rec.items() if k not in ("type", "session", "when")}
        elif kind == "memory":
            summary.readings.extend(rec.get("readings") or [])
            summary.decisions.extend(rec.get("decisions") or [])
        elif kind == "residency":
            summary.residency[str(rec.get("when"))] = {
                k: v for k, v in rec.items() if k not in ("type", "session", "when", "stamp")}
        elif kind == "history":
            summary.history = {k: v for k, v in rec.items() if k not in ("type", "session")}
        elif kind == "run_end":
            summary.status = str(rec.get("status") or RunStatus.INCOMPLETE.value)
            summary.message = str(rec.get("message") or "")
            summary.ended_at = str(rec.get("stamp") or "")
            if rec.get("canary"):
                summary.canary["verdict"] = rec.get("canary")
    bandwidth = options.get("memory_bandwidth_bytes_per_s") or machine_bandwidth(records)
    order = requested + [m for m in latest_session if m not in requested]
    model_recs: Dict[str, List[Mapping[str, Any]]] = {}
    for model in order:
        if model not in latest_session:
            continue
        session = latest_session[model]
        recs = [r for r in records if r.get("model") == model
                and int(r.get("session") or 0) == session
                and r.get("type") in ("model_start", "load", "test", "model_end")]
        summary.models.append(_model_result(model, recs, bandwidth=bandwidth))
        model_recs[model] = recs
    platform = platform_summary(records, model_recs)
    summary.machine, summary.platform = platform["machine"], platform["platform"]
    summary.platform_samples = platform["samples"]
    for result in summary.models:
        result.energy = platform["energy"].get(result.model)
        _add_energy_metrics(result)
    # On unified memory a model lives outside the container's cgroup: the peak is what the
    # chosen sources saw Ollama hold, or the container's working set where that is larger.
    summary.peak_working_set_bytes = max((max(reading_working_set(r), reading_memory_in_use(r))
                                          for r in summary.readings), default=0)
    summary.recommendation = recommend([
        Candidate(model=m.model, decode_tokens_per_s=m.median("decode_tokens_per_s"),
                  quality_score=m.quality_score)
        for m in summary.models if m.status == ModelStatus.OK.value
    ]).to_dict()
    return summary
