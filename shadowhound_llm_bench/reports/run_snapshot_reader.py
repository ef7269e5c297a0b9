"""A run folder read into a RunSnapshot for comparison and history, from its tests.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..adapters.machine_identity import local_machine_record, machine_id_of
from ..core.runs.run_comparison import (ALL_TASKS, CellStats, ModelSnapshot, RunSnapshot,
                                        suite_version)
from ..core.runs.run_records import RunStatus, RunSummary, summarize_run
from ..core.runs.stats import summarize
from .jsonl_log import LOG_NAME, read_records
from .results_json import RESULTS_NAME
from .run_dir import RunDirError, run_dir_for

# Report metric names -> compared metric keys (per repetition, so per task and per model).
_REPEATED_METRICS = {
    "decode_tokens_per_s": "decode_tps",
    "ttft_ms": "ttft_ms",
    "prompt_tokens_per_s": "prompt_tps",
    "j_per_token": "j_per_token",
}


class RunLoadError(ValueError):
    """A path that is not a usable run folder; the message is one line for the user."""


def resolve_run(argument: str, results_root: Path) -> Path:
    """Return the folder a RUN argument names: a folder path, or a run id under results_root."""
    path = Path(argument).expanduser()
    if path.is_dir():
        return path
    try:
        by_id = run_dir_for(results_root, argument)
    except RunDirError:
        raise RunLoadError(f"{argument}: no such run folder") from None
    if not by_id.is_dir():
        raise RunLoadError(f"{argument}: no such run folder, and no run {argument} under "
                           f"{results_root}")
    return by_id


def _machine_record(summary: RunSummary, records: Iterable[Mapping[str, Any]],
                    run_dir: Path) -> Dict[str, Any]:
    """Return the machine record the run carries (summary, run_start or results.json), or {}."""
    own = getattr(summary, "machine", None)
    if isinstance(own, Mapping) and own:
        return dict(own)
    for rec in records:
        if rec.get("type") == "run_start" and isinstance(rec.get("machine"), Mapping):
            return dict(rec["machine"])
    try:
        data = json.loads((run_dir / RESULTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    for holder in (data, data.get("run") or {}):
        if isinstance(holder, Mapping) and isinstance(holder.get("machine"), Mapping):
            return dict(holder["machine"])
    return {}


def _energy(model: Any) -> Optional[Mapping[str, Any]]:
    """Return a model-level J/token as stats, wherever the run recorded it."""
    stats = (model.metrics or {}).get("j_per_token")
    if isinstance(stats, Mapping):
        return stats
    value = getattr(model, "j_per_token", None)
    if isinstance(value, (int, float)):
        return {"n": 1, "mean": float(value)}
    energy = getattr(model, "energy", None)  # core/platform/energy_accounting
    if isinstance(energy, Mapping) and isinstance(energy.get("j_per_token"), (int, float)):
        return {"n": 1, "mean": float(energy["j_per_token"])}
    return None


def _energy_from_tests(snap: ModelSnapshot, model: Any,
                       records: Sequence[Mapping[str, Any]]) -> None:
    """Add J/token cells from the test records' metrics when the summary did not aggregate them."""
    if any(key == "j_per_token" for _, key in snap.cells):
        return
    per_task: Dict[str, List[float]] = {}
    for rec in records:
        if rec.get("model") != model.model or rec.get("warmup") or rec.get("status") != "ok" \
                or int(rec.get("session") or 0) != model.session:
            continue
        value = (rec.get("metrics") or {}).get("j_per_token")
        if isinstance(value, (int, float)):
            per_task.setdefault(str(rec.get("task")), []).append(float(value))
    for task, values in per_task.items():
        stats = summarize(values)
        if stats:
            snap.cells[(task, "j_per_token")] = CellStats.from_mapping(stats.to_dict())
    everything = [v for values in per_task.values() for v in values]
    if everything:
        stats = summarize(everything)
        snap.cells[(ALL_TASKS, "j_per_token")] = CellStats.from_mapping(stats.to_dict())


def _model_snapshot(model: Any) -> ModelSnapshot:
    meta = model.metadata or {}
    snap = ModelSnapshot(model=model.model, status=model.status,
                         digest=str(meta.get("digest") or ""),
                         quantization=str(meta.get("quantization") or ""),
                         parameter_size=str(meta.get("parameter_size") or ""),
                         size_bytes=int(meta.get("size_bytes") or 0))
    for task in model.tasks:
        for name, key in _REPEATED_METRICS.items():
            cell = CellStats.from_mapping(task.metrics.get(name) or {})
            if cell:
                snap.cells[(task.task, key)] = cell
        quality = CellStats.from_mapping(task.score or {})
        if quality:
            snap.cells[(task.task, "quality")] = quality
    for name, key in _REPEATED_METRICS.items():
        cell = CellStats.from_mapping((model.metrics or {}).get(name) or {})
        if cell:
            snap.cells[(ALL_TASKS, key)] = cell
    energy = _energy(model)
    if energy and (ALL_TASKS, "j_per_token") not in snap.cells:
        cell = CellStats.from_mapping(energy)
        if cell:
            snap.cells[(ALL_TASKS, "j_per_token")] = cell
    if isinstance(model.quality_score, (int, float)):
        snap.cells[(ALL_TASKS, "quality")] = CellStats.single(float(model.quality_score))
    load_s = (model.load or {}).get("load_s")
    if isinstance(load_s, (int, float)) and (model.load or {}).get("ok"):
        snap.cells[(ALL_TASKS, "load_s")] = CellStats.single(float(load_s))
    peak = (model.memory or {}).get("memory_peak_bytes")
    if isinstance(peak, (int, float)) and peak > 0:
        snap.cells[(ALL_TASKS, "peak_bytes")] = CellStats.single(float(peak))
    return snap


def snapshot_from_summary(summary: RunSummary, *, machine: Mapping[str, Any],
                          source: str = "",
                          records: Sequence[Mapping[str, Any]] = ()) -> RunSnapshot:
    """Build the snapshot of a summarized run measured on the given machine."""
    snapshot = RunSnapshot(
        run_id=summary.run_id, machine_id=machine_id_of(machine), machine=dict(machine),
        started_at=summary.started_at, ended_at=summary.ended_at, status=summary.status,
        ollama_version=summary.ollama_version, options=dict(summary.options),
        suite_name=str(summary.suite.get("name") or ""), suite_version=suite_version(
            summary.suite), source=source)
    tests = [r for r in records if r.get("type") == "test"]
    energy_tests = [r for r in tests if "j_per_token" in (r.get("metrics") or {})]
    for model in summary.models:
        if model.tests_ok or model.load:
            snap = _model_snapshot(model)
            if energy_tests:
                _energy_from_tests(snap, model, energy_tests)
            snapshot.models[model.model] = snap
    return snapshot


def read_run(run_dir: Path, *, require_finished: bool = False,
             machine_id: str = "") -> RunSnapshot:
    """
    Read a run folder; raises RunLoadError with a one-line reason for anything unusable.

    The machine is the run's own machine record when it has one; otherwise machine_id when
    given, else this machine (a run recorded where it ran).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunLoadError(f"{run_dir}: no such folder")
    log = run_dir / LOG_NAME
    if not run_dir.is_dir() or not log.is_file():
        raise RunLoadError(f"{run_dir} is not a run folder (no {LOG_NAME})")
    try:
        records, bad = read_records(log)
    except OSError as exc:
        raise RunLoadError(f"{log}: cannot be read: {exc}") from exc
    if bad:
        raise RunLoadError(f"{log} is truncated or damaged: {bad} unreadable line(s)")
    try:
        summary = summarize_run(records)
    except ValueError as exc:
        raise RunLoadError(f"{log} is not a run log: {exc}") from exc
    if require_finished and summary.status == RunStatus.INCOMPLETE.value:
        raise RunLoadError(f"run {summary.run_id} in {run_dir} has not finished (its log has "
                           "no run_end: crashed, killed or still running)")
    machine = _machine_record(summary, records, run_dir)
    if not machine_id_of(machine):
        fallback = local_machine_record() if not machine_id else {"machine_id": machine_id}
        machine = {**machine, **fallback}
    return snapshot_from_summary(summary, machine=machine, source=str(run_dir),
                                 records=records)


def read_runs(run_dirs: Iterable[Path], **kwargs: Any) -> List[RunSnapshot]:
    """Read every folder first, so that one bad folder stops the whole command."""
    return [read_run(path, **kwargs) for path in run_dirs]
