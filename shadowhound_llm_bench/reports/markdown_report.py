"""summary.md: tables a person reads, the recommendation with its rules, failures with reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..core.runs.inert_text import markdown_cell as _md
from ..core.decider.residency import left_loaded, followed_lines
from ..core.runs.run_records import ModelResult, RunSummary
from ..core.ollama.stream_end import ENDED_EARLY_TEXT
from ..core.units import to_gib
from .atomic_write import write_atomic
from .platform_markdown import platform_sections
from .preemption_table import preemption_lines

MARKDOWN_NAME = "summary.md"


def _num(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _gib(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{to_gib(value):.2f}"


def _median_sd(stats: Optional[Mapping[str, float]], digits: int = 1) -> str:
    if not stats:
        return "–"
    return f"{stats['median']:.{digits}f} ± {stats['stddev']:.{digits}f}"


def _table(header: Sequence[str], rows: List[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    # Cells may hold what a model or a server wrote: one line, no table break, no HTML.
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _results_rows(models: Sequence[ModelResult]) -> List[List[str]]:
    rows = []
    for m in models:
        meta = m.metadata
        rows.append([
            m.model, m.status, meta.get("quantization") or "–", meta.get("parameter_size") or "–",
            _gib(meta.get("size_bytes")) if meta.get("size_bytes") else "–",
            _median_sd(m.metrics.get("decode_tokens_per_s")),
            _median_sd(m.metrics.get("ttft_ms"), 0),
            _median_sd(m.metrics.get("inter_token_ms_mean"), 1),
            _median_sd(m.metrics.get("prompt_tokens_per_s")),
            _median_sd(m.metrics.get("e2e_latency_s"), 2),
            _num(m.load.get("load_s") if m.load else None, 2),
            _num(m.quality_score), str(m.truncated), str(m.ended_early),
            f"{m.tests_ok}/{m.tests_ok + m.tests_failed}",
            _num(m.roofline_percent),
        ])
    return rows


def _memory_rows(models: Sequence[ModelResult]) -> List[List[str]]:
    rows = []
    for m in models:
        mem: Dict[str, Any] = m.memory or {}
        if not mem:
            continue
        cleanup = mem.get("cleanup_successful")
        rows.append([
            m.model,
            f"{_gib(mem.get('predicted_footprint_bytes'))} ({mem.get('prediction_source', '')})",
            _gib(mem.get("measured_footprint_bytes")), _gib(mem.get("memory_before_bytes")),
            _gib(mem.get("memory_peak_bytes")) + (" (shared)" if m.concurrent_with else ""),
            _gib(mem.get("memory_after_bytes")),
            _gib(mem.get("memory_after_unload_bytes")),
            ("unverified" if mem.get("unverified") else "–") if cleanup is None
            else ("yes" if cleanup else "NO"),
            _num(mem.get("reclaim_s"), 2), str(mem.get("drop_caches_calls", 0)),
            str(mem.get("unloads", 0)), str(mem.get("restarts", 0)), str(mem.get("retries", 0)),
        ])
    return rows


def _residency_lines(residency: Mapping[str, Any]) -> List[str]:
    """List what Ollama held at the run's start and after it, and why anything is still loaded."""
    if not residency:
        return []
    lines = ["", "## Models loaded at the start and the end", ""]
    start = residency.get("start") or {}
    if start.get("container_problem"):
        lines.append(f"- Start: {start['container_problem']}")
    elif start.get("container_started"):
        lines.append("- Start: the container was not running and was started.")
    found = start.get("found_loaded") or []
    lines.append(f"- Found loaded before the run: {', '.join(found) or 'none'}"
                 + (f" ({start.get('action')})" if found else ""))
    end = residency.get("end") or {}
    if end:
        lines.append(f"- Unloaded after the run: {', '.join(end.get('unloaded') or []) or 'none'}")
        left = left_loaded(end)
        for model, reason in left:
            lines.append(f"- Still loaded: {model} — {reason}")
        if not left:
            lines.append("- Still loaded: none (checked in /api/ps)")
        verdict = end.get("cleanup") or ("verified" if end.get("verified") else "unverified")
        lines.append(f"- Cleanup: {verdict}")
    followed = residency.get("followed") or {}
    for line in followed_lines(followed):
        lines.append(f"- Followed after the run: {line}")
    if followed.get("models"):  # what following ended with supersedes "Still loaded" above
        held = [str(m.get("model")) for m in followed["models"]
                if m.get("outcome") in ("", "left loaded")]
        lines.append(f"- Still loaded after following: {', '.join(held) or 'none'}")
    return lines


def _memory_source_lines(summary: RunSummary) -> List[str]:
    """Where model memory was read, and the measurements that were not kept."""
    lines = [""]
    sources = (summary.plan or {}).get("memory_sources")
    if sources:
        lines.append(f"Memory sources: {sources}.")
    used = sorted({str((m.memory or {}).get("memory_source") or "") for m in summary.models}
                  - {""})
    if used:
        lines.append(f"Model memory read from: {', '.join(used)}. Reclaim s: from the unload "
                     "until the host's available memory rose by the expected release.")
    for m in summary.models:
        reason = (m.memory or {}).get("measurement_rejected_reason")
        if reason:
            lines.append(f"- Not cached: {reason}")
    return lines if len(lines) > 1 else []


def render_markdown(summary: RunSummary) -> str:
    o = summary.options
    lines = [f"# LLM benchmark run {summary.run_id}", ""]
    lines += [
        f"- Status: **{summary.status}**"
        + (" (the log has no end: the run was killed or crashed)"
           if summary.status == "incomplete" else "")
        + (f" — {_md(summary.message)}" if summary.message else ""),
        f"- Models requested: {', '.join(summary.models_requested) or '–'}",
        f"- Started: {summary.started_at}; ended: {summary.ended_at or '–'}; "
        f"sessions: {summary.sessions}",
        f"- Ollama: {_md(summary.host or '–')} version {_md(summary.ollama_version or '–')}",
        f"- Suite: {_md(summary.suite.get('name', '–'))} "
        f"({len(summary.suite.get('tasks', []))} tasks)",
        f"- Options: num_ctx {o.get('num_ctx')}, num_predict {o.get('num_predict')}, "
        f"temperature {o.get('temperature')}, seed {o.get('seed')}, keep_alive "
        f"{o.get('keep_alive')}, repetitions {o.get('repetitions')} "
        f"(warm-up {'excluded' if o.get('warmup') else 'off'})",
        f"- Memory management: {'on' if summary.guarded else 'off'}"
        + (f" — {_md(summary.note)}" if summary.note else ""),
    ]
    if summary.peak_working_set_bytes:
        lines.append(f"- Peak container working set: {_gib(summary.peak_working_set_bytes)} GiB")
    lines += ["", "## Results (medians ± stddev over measured repetitions, all tasks)", ""]
    lines += _table(["model", "status", "quant", "params", "size GiB", "decode tok/s",
                     "TTFT ms", "inter-token ms", "prompt tok/s", "e2e s", "load s", "quality",
                     "truncated", "ended early", "tests ok", "roofline %"],
                    _results_rows(summary.models))
    looping = [m for m in summary.models if m.ended_early]
    if looping:
        lines += ["", "Ended early (" + ENDED_EARLY_TEXT + "): "
                  + "; ".join(f"{m.model} {m.ended_early} of {m.tests_ok} ok test(s)"
                              for m in looping)
                  + ". Their tokens and timing are kept; Ollama sent no counters for them, so "
                  "their decode rate is timed on the client between the first and last chunk."]
    side_by_side = [m for m in summary.models if m.concurrent_with]
    if side_by_side:
        lines += ["", "Tested side by side (parallel small-model testing): "
                  + "; ".join(f"{m.model} with {', '.join(m.concurrent_with)}"
                              for m in side_by_side)
                  + ". These models shared the machine's memory bandwidth and compute while "
                  "they were measured, so their speeds and latencies are lower than in a solo "
                  "run and are not comparable with models tested alone."]
    lines += ["", "## Per task", ""]
    task_rows = []
    for m in summary.models:
        for t in m.tasks:
            dec = t.metrics.get("decode_tokens_per_s")
            task_rows.append([
                m.model, t.task, f"{t.tests_ok}/{t.tests_ok + t.tests_failed}",
                "–" if not dec else f"{dec['mean']:.1f} ± {dec['stddev']:.1f} "
                f"[{dec['min']:.1f}–{dec['max']:.1f}]",
                _median_sd(t.metrics.get("ttft_ms"), 0),
                "–" if not t.score else f"{t.score['mean']:.1f} [{t.score['min']:.0f}–"
                f"{t.score['max']:.0f}]",
                str(t.truncated), str(t.ended_early),
            ])
    lines += _table(["model", "task", "ok", "decode tok/s mean ± sd [min–max]", "TTFT ms",
                     "score mean [min–max]", "truncated", "ended early"], task_rows)
    lines += ["", "## Recommendation", ""]
    rec = summary.recommendation
    for key, title in (("fastest", "Fastest"), ("best_quality", "Best quality"),
                       ("balanced", "Balanced")):
        pick = rec.get(key)
        if pick:
            lines.append(f"- **{title}: {_md(pick['model'])}** — {_md(pick['value'])}. "
                         f"Rule: {_md(pick['rule'])}.")
        else:
            lines.append(f"- {title}: no model qualifies.")
    lines += ["", "## Quality rules and what each model earned (last repetition)", ""]
    for task in summary.suite.get("tasks", []):
        lines.append(f"### {_md(task.get('id'))} ({_md(task.get('kind'))})")
        lines.append("")
        rows = []
        for m in summary.models:
            for t in m.tasks:
                if t.task != task.get("id"):
                    continue
                for item in t.last_score_items:
                    rows.append([m.model, item.get("rule", ""),
                                 f"{item.get('points', 0):g}/{item.get('max_points', 0):g}",
                                 item.get("detail", "")])
        if rows:
            lines += _table(["model", "rule", "points", "detail"], rows)
        else:
            lines.append("No model answered this task.")
        lines.append("")
    problems = [m for m in summary.models if m.status != "ok" or m.failures]
    lines += ["## Failures and skips", ""]
    if not problems:
        lines.append("None.")
    for m in problems:
        lines.append(f"- **{_md(m.model)}**: {_md(m.status)}"
                     + (f" — {_md(m.reason)}" if m.reason else ""))
        for f in m.failures:
            lines.append(f"  - {_md(f.get('task'))} repetition {_md(f.get('repetition'))}: "
                         f"{_md(f.get('kind'))} — {_md(f.get('error'))}")
    mem_rows = _memory_rows(summary.models)
    lines += ["", "## Memory (GiB)", ""]
    if mem_rows:
        lines += _table(["model", "predicted (source)", "measured", "before", "peak", "after",
                         "after unload", "cleanup ok", "reclaim s", "drop caches", "unloads",
                         "restarts", "retries"], mem_rows)
        lines += _memory_source_lines(summary)
    else:
        lines.append("No memory records (run without memory management).")
    lines += platform_sections(summary, _table)
    unmeasured = sorted({str(m.memory.get("unverified")) for m in summary.models
                         if m.memory and m.memory.get("unverified")})
    for reason in unmeasured:
        lines.append(f"\nNot measured: {reason}.")
    backend_notes = [d for d in summary.decisions if d.get("action") in ("backend", "container")]
    if backend_notes:
        lines += ["", "Where Ollama ran:", ""]
        lines += [f"- {d.get('reason')}" for d in backend_notes]
    lines += _cache_drop_lines(summary.decisions)
    lines += preemption_lines(summary.models)
    lines += _residency_lines(summary.residency)
    canary = summary.canary
    if canary:
        lines += ["", "## Canary", ""]
        for when in ("before", "after"):
            c = canary.get(when)
            if c:
                lines.append(f"- {when}: {_md(c.get('model'))} "
                             f"{_num(c.get('decode_tokens_per_s'))} tokens/s"
                             + (f" — {_md(c.get('error'))}" if c.get("error") else ""))
        verdict = canary.get("verdict")
        if verdict:
            lines.append(f"- Verdict: {_md(verdict.get('message', ''))}")
    lines += _history_lines(summary.history)
    lines.append("")
    return "\n".join(lines)


def _cache_drop_lines(decisions: Sequence[Mapping[str, Any]]) -> List[str]:
    """Each drop_caches the run wrote: for which model, what was written, how long it took."""
    drops = [d for d in decisions if d.get("action") == "drop_caches"]
    if not drops:
        return []
    lines = ["", "## Cache drops", ""]
    lines += [f"- {_md(d.get('model') or '-')}: {_md(d.get('reason'))} "
              f"({_num(d.get('duration_s'), 3)} s)" for d in drops]
    return lines


def _history_lines(history: Mapping[str, Any]) -> List[str]:
    if not history:
        return []
    lines = ["", "## Against earlier runs", ""]
    regressions = history.get("regressions") or []
    lines += [f"- **{r.get('sentence')}**" for r in regressions]
    if not regressions:
        lines.append(f"- {history.get('summary') or 'no regression beyond noise'}")
    compared = history.get("compared_with") or {}
    if compared:
        lines.append("- Compared with: " + ", ".join(
            f"{model} → run {run_id}" for model, run_id in sorted(compared.items())))
    lines.append(f"- History database: {history.get('database', '–')} "
                 f"(machine {history.get('machine_id', '–')})")
    return lines


def write_markdown(summary: RunSummary, path: Path) -> None:
    write_atomic(path, render_markdown(summary))
