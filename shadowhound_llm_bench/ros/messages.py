"""Conversions between the package's readings and results and the ROS messages (GiB made here)."""

from __future__ import annotations

import math
from typing import Any, Optional

from builtin_interfaces.msg import Time

from ..core.runs.inert_text import terminal_line, terminal_text
from ..core.memory.memory_reading import MemoryReading
from ..core.runs.progress import ProgressEvent
from ..core.runs.run_status import is_success
from ..core.units import to_gib

UINT64_MAX = 2 ** 64 - 1


def _u64(n_bytes: Optional[float]) -> int:
    if n_bytes is None or n_bytes != n_bytes:
        return 0
    return max(0, min(UINT64_MAX, int(n_bytes)))


def _gib(n_bytes: Optional[float]) -> float:
    return math.nan if n_bytes is None else to_gib(n_bytes)


def stamp_from_seconds(stamp_s: float) -> Time:
    """Wall-clock seconds as builtin_interfaces/Time."""
    sec = int(stamp_s)
    return Time(sec=sec, nanosec=int(round((stamp_s - sec) * 1e9)) % 1_000_000_000)


def container_memory_msg(msg_type: type, reading: MemoryReading, *, container_name: str,
                         stamp: Optional[Time] = None, loaded_models: Optional[int] = None
                         ) -> Any:
    """
    One ContainerMemory message from one MemoryReading.

    stamp is the node clock's now (sim time under use_sim_time); without it the reading's wall
    time is used. frame_id stays empty: memory has no coordinate frame. loaded_models, when
    given, replaces the reading's count (a fresher view of /api/ps).
    """
    msg = msg_type()
    msg.header.stamp = stamp if stamp is not None else stamp_from_seconds(reading.stamp_s)
    msg.header.frame_id = ""
    msg.container_name = container_name
    msg.reading_wall_time_s = float(reading.stamp_s)
    sample = reading.container
    msg.working_set_bytes = _u64(sample.working_set_bytes)
    msg.working_set_gib = to_gib(msg.working_set_bytes)
    msg.usage_bytes = _u64(sample.usage_bytes)
    msg.usage_gib = to_gib(msg.usage_bytes)
    msg.limit_bytes = _u64(sample.limit_bytes)
    msg.limit_gib = to_gib(msg.limit_bytes)
    msg.host_total_bytes = _u64(reading.host_total_bytes)
    msg.host_total_gib = to_gib(msg.host_total_bytes)
    msg.host_available_bytes = _u64(reading.host_available_bytes)
    msg.host_available_gib = to_gib(msg.host_available_bytes)
    msg.ros_live_bytes = _u64(reading.ros_live_bytes)
    msg.ros_live_gib = to_gib(msg.ros_live_bytes)
    msg.ros_reserve_bytes = _u64(reading.ros_reserve_bytes)
    msg.ros_reserve_gib = to_gib(msg.ros_reserve_bytes)
    msg.model_budget_bytes = _u64(reading.model_budget_bytes)
    msg.model_budget_gib = to_gib(msg.model_budget_bytes)
    msg.budget_headroom_gib = to_gib(reading.budget_headroom_bytes)
    msg.pressure_percent = float(reading.pressure_percent)
    count = reading.loaded_models if loaded_models is None else loaded_models
    msg.loaded_models = max(0, int(count))
    msg.container_state = int(sample.state)
    return msg


def feedback_msg(feedback_type: type, event: ProgressEvent,
                 memory: Optional[MemoryReading] = None) -> Any:
    """Build RunBenchmark feedback from a progress event; `memory` replaces its reading."""
    msg = feedback_type()
    msg.model = event.model
    msg.model_index = max(0, int(event.model_index))
    msg.model_count = max(0, int(event.model_count))
    msg.phase = event.phase.value
    msg.progress = float(min(1.0, max(0.0, event.progress)))
    msg.status = event.status
    reading = memory if memory is not None else event.memory
    if reading is not None:
        msg.container_working_set_bytes = _u64(reading.container.working_set_bytes)
        msg.container_working_set_gib = to_gib(msg.container_working_set_bytes)
        msg.model_budget_bytes = _u64(reading.model_budget_bytes)
        msg.model_budget_gib = to_gib(msg.model_budget_bytes)
    return msg


def _median(stats: Any) -> float:
    if isinstance(stats, dict) and stats.get("median") is not None:
        return float(stats["median"])
    return math.nan


def model_result_msg(msg_type: type, model: Any) -> Any:
    """One ModelResult message from the engine's per-model result (run_records.ModelResult)."""
    msg = msg_type()
    msg.model = model.model
    msg.status = model.status
    # Reasons may come from a resumed run's log, a file on disk: inert in a message.
    msg.reason = terminal_line(model.reason or "")
    msg.tests_ok = max(0, int(model.tests_ok))
    msg.tests_failed = max(0, int(model.tests_failed))
    metrics = model.metrics or {}
    msg.decode_tokens_per_s = _median(metrics.get("decode_tokens_per_s"))
    msg.prompt_tokens_per_s = _median(metrics.get("prompt_tokens_per_s"))
    msg.ttft_ms = _median(metrics.get("ttft_ms"))
    msg.inter_token_ms = _median(metrics.get("inter_token_ms_mean"))
    msg.e2e_latency_s = _median(metrics.get("e2e_latency_s"))
    load_s = (model.load or {}).get("load_s")
    msg.load_s = float(load_s) if load_s is not None else _median(metrics.get("load_s"))
    msg.quality_score = math.nan if model.quality_score is None else float(model.quality_score)
    memory = model.memory or {}
    msg.predicted_footprint_gib = _gib(memory.get("predicted_footprint_bytes"))
    msg.prediction_source = str(memory.get("prediction_source") or "unknown")
    msg.measured_footprint_gib = _gib(memory.get("measured_footprint_bytes"))
    msg.memory_before_gib = _gib(memory.get("memory_before_bytes"))
    msg.memory_peak_gib = _gib(memory.get("memory_peak_bytes"))
    msg.memory_after_gib = _gib(memory.get("memory_after_bytes"))
    msg.memory_after_unload_gib = _gib(memory.get("memory_after_unload_bytes"))
    msg.cleanup_successful = bool(memory.get("cleanup_successful"))
    msg.unloads = max(0, int(memory.get("unloads") or 0))
    msg.restarts = max(0, int(memory.get("restarts") or 0))
    msg.retries = max(0, int(memory.get("retries") or 0))
    j_per_token = (getattr(model, "energy", None) or {}).get("j_per_token")
    msg.j_per_token = math.nan if j_per_token is None else float(j_per_token)
    return msg


def result_msg(result_type: type, model_type: type, outcome: Any) -> Any:
    """Build the RunBenchmark result from the runner's RunOutcome (reports, models, peak)."""
    msg = result_type()
    msg.run_id = outcome.run_id
    msg.status = outcome.status
    msg.success = is_success(outcome.status)
    summary = outcome.summary
    if summary is not None:
        msg.models = [model_result_msg(model_type, m) for m in summary.models]
        for model in summary.models:
            if model.status in ("failed", "aborted"):
                msg.failed_models.append(model.model)
                msg.failure_reasons.append(terminal_line(model.reason or model.status))
            elif model.status == "skipped":
                msg.skipped_models.append(model.model)
                msg.skip_reasons.append(terminal_line(model.reason or "skipped"))
        msg.peak_container_bytes = _u64(summary.peak_working_set_bytes)
        msg.peak_container_gib = to_gib(msg.peak_container_bytes)
    reports = outcome.reports
    if reports is not None:
        msg.results_dir = str(reports.run_dir)
        for field_name, path in (("jsonl_log", reports.jsonl_log),
                                 ("report_json", reports.results_json),
                                 ("report_csv", reports.csv),
                                 ("report_markdown", reports.markdown),
                                 ("memory_plot", reports.memory_plot)):
            setattr(msg, field_name, str(path) if path.is_file() else "")
    msg.summary = summary_line(msg, outcome.message)
    unmeasured = sorted({str(m.memory.get("unverified")) for m in
                         (summary.models if summary is not None else [])
                         if m.memory and m.memory.get("unverified")})
    if unmeasured:
        msg.summary += "; not measured: " + "; ".join(unmeasured)
    msg.summary = terminal_text(msg.summary)
    return msg


def summary_line(msg: Any, message: str) -> str:
    """One readable paragraph: status, per-model speed and quality, failures and skips."""
    parts = [f"run {msg.run_id} {msg.status}" + (f": {message}" if message else "")]
    for model in msg.models:
        if model.status == "ok":
            parts.append(f"{model.model}: {model.decode_tokens_per_s:.1f} tok/s, quality "
                         f"{model.quality_score:.0f}/100")
        else:
            parts.append(f"{model.model}: {model.status}" +
                         (f" ({model.reason})" if model.reason else ""))
    if msg.peak_container_bytes:
        parts.append(f"peak container memory {msg.peak_container_gib:.2f} GiB")
    return "; ".join(parts)


def plan_result_msg(result_type: type, plan: Any, *, run_id: str = "") -> Any:
    """Build the RunBenchmark result of a dry run: the plan in words, nothing loaded."""
    msg = result_type()
    msg.run_id = run_id
    msg.status = "planned"
    msg.success = True
    msg.peak_container_bytes = _u64(plan.predicted_peak_bytes)
    msg.peak_container_gib = to_gib(msg.peak_container_bytes)
    lines = [f"plan ({plan.preset}): predicted peak {to_gib(plan.predicted_peak_bytes):.2f} GiB "
             f"of {to_gib(plan.model_budget_bytes):.2f} GiB budget, "
             f"{plan.predicted_unloads} unloads, {plan.predicted_restarts} restarts"]
    for planned in plan.models:
        actions = ", ".join(planned.actions_before) or "none"
        line = (f"{planned.model}: {to_gib(planned.predicted_footprint_bytes):.2f} GiB "
                f"({planned.prediction_source}), before: {actions}")
        if planned.skip_reason:
            line += f", would be skipped: {planned.skip_reason}"
            msg.skipped_models.append(planned.model)
            msg.skip_reasons.append(planned.skip_reason)
        lines.append(line)
    for batch in getattr(plan, "batches", None) or []:
        if len(batch) > 1:
            lines.append(f"side by side: {' + '.join(batch)}")
    if getattr(plan, "memory_sources", ""):
        lines.append(f"memory: {plan.memory_sources}")
    if getattr(plan, "calibration_steps", None):
        lines.append(f"calibration first: {', '.join(plan.calibration_steps)}")
    msg.summary = terminal_text("\n".join(lines))
    return msg
