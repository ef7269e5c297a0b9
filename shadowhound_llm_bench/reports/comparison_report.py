"""A comparison of runs and a model's history as Markdown, CSV, JSON and PNG charts."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..core.runs.inert_text import csv_cell, csv_row, plot_label
from ..core.runs.inert_text import markdown_cell as _md
from ..core.runs.metric_trend import TrendStep
from ..core.runs.run_comparison import (ALL_TASKS, CellComparison, Comparison, MetricSpec,
                                        Verdict, p_value_text)

_ALL_TASKS_LABEL = "(all tasks)"
_VERDICT_COLORS = {Verdict.REGRESSED: "tab:red", Verdict.IMPROVED: "tab:green"}


def _number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if abs(value) < 1e-9:  # rounding noise of equal measurements, not a spread
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _value(spec: MetricSpec, cell: CellComparison) -> str:
    if cell.stats is None:
        return "-"
    scale = spec.display_scale
    text = _number(cell.stats.mean * scale)
    if cell.stats.n > 1:
        text += f" ± {_number(cell.stats.stddev * scale)}"
    return text


def _signed(change: Optional[float]) -> str:
    return "-" if change is None else f"{change:+.1f} %"


def cell_text(spec: MetricSpec, cell: CellComparison) -> str:
    """Return a table cell: mean ± stddev, then change and verdict against the baseline."""
    value = _value(spec, cell)
    if cell.verdict in (Verdict.BASELINE, Verdict.MISSING):
        return value
    text = f"{value} ({_signed(cell.change_percent)}, "
    text += f"**{cell.words(spec)}**" if cell.verdict in (Verdict.IMPROVED,
                                                          Verdict.REGRESSED) \
        else cell.words(spec)
    if cell.p_value is not None:
        text += f", {p_value_text(cell.p_value)}"
    return text + ")"


def _task(task: str) -> str:
    return _ALL_TASKS_LABEL if task == ALL_TASKS else task


def comparison_markdown(comparison: Comparison) -> str:
    """Return the comparison as Markdown: the runs, then one table per metric."""
    base = comparison.runs[0]
    lines = ["# Run comparison", "",
             "| | run | machine | started | Ollama | pinned options | comparable |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for index, run in enumerate(comparison.runs):
        pinned = ", ".join(f"{k} {v}" for k, v in run.pinned.items())
        comparable = "baseline" if index == 0 else (
            "**NOT COMPARABLE**: " + "; ".join(run.not_comparable) if run.not_comparable
            else "yes")
        # Versions, machine ids and notes come from servers and logs: inert in a table.
        lines.append(f"| {index + 1} | {_md(run.run_id)} | {_md(run.machine_id)} | "
                     f"{_md(run.started_at)} | {_md(run.ollama_version or '-')} | "
                     f"{_md(pinned)} | {_md(comparable)} |")
    lines.append("")
    notes = [f"run {r.run_id}: {note}" for r in comparison.runs[1:] for note in r.model_notes]
    if notes:
        lines += ["Model changes against the baseline: " + _md("; ".join(notes)) + ".", ""]
    lines += [f"Change against the baseline run {_md(base.run_id)} in percent of the mean; "
              "verdict "
              f"from {comparison.test}, two-sided, alpha {comparison.alpha:g}; a change under "
              f"{comparison.min_change_percent:g} % is within noise. Values: mean ± standard "
              "deviation over the repetitions; 'untested': a single value on one side.", ""]
    for table in comparison.tables:
        spec = table.metric
        lines += [f"## {spec.label} ({spec.unit}, "
                  f"{'higher' if spec.higher_is_better else 'lower'} is better)", ""]
        header = ["model", "task"] + [_md(r.run_id) + (" (baseline)" if i == 0 else "")
                                      for i, r in enumerate(comparison.runs)]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + " --- |" * len(header))
        for row in table.rows:
            cells = [cell_text(spec, c) for c in table.cells[row]]
            lines.append(f"| {_md(row[0])} | {_md(_task(row[1]))} | " + " | ".join(cells)
                         + " |")
        lines.append("")
    return "\n".join(lines)


def _cell_dict(spec: MetricSpec, run_id: str, cell: CellComparison) -> Dict[str, Any]:
    stats = cell.stats
    return {"run_id": run_id, "n": stats.n if stats else None,
            "mean": stats.mean * spec.display_scale if stats else None,
            "stddev": stats.stddev * spec.display_scale if stats else None,
            "change_percent": cell.change_percent, "verdict": cell.words(spec),
            "p_value": cell.p_value}


def comparison_dict(comparison: Comparison) -> Dict[str, Any]:
    """Return the comparison as a JSON-ready dict."""
    return {
        "test": comparison.test, "alpha": comparison.alpha,
        "min_change_percent": comparison.min_change_percent,
        "runs": [{"run_id": r.run_id, "machine_id": r.machine_id, "started_at": r.started_at,
                  "ollama_version": r.ollama_version, "pinned": r.pinned,
                  "comparable": not r.not_comparable, "not_comparable": r.not_comparable,
                  "model_notes": r.model_notes} for r in comparison.runs],
        "metrics": [{
            "metric": t.metric.key, "label": t.metric.label, "unit": t.metric.unit,
            "higher_is_better": t.metric.higher_is_better,
            "rows": [{"model": model, "task": task, "cells": [
                _cell_dict(t.metric, run.run_id, cell)
                for run, cell in zip(comparison.runs, t.cells[(model, task)])]}
                for model, task in t.rows]} for t in comparison.tables],
    }


def comparison_csv(comparison: Comparison) -> str:
    """Return one CSV row per metric, model, task and run."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["metric", "unit", "model", "task", "run_id", "machine_id", "comparable",
                     "n", "mean", "stddev", "change_percent", "verdict", "p_value"])
    for table in comparison.tables:
        for model, task in table.rows:
            for run, cell in zip(comparison.runs, table.cells[(model, task)]):
                d = _cell_dict(table.metric, run.run_id, cell)
                writer.writerow(csv_row([table.metric.key, table.metric.unit, model, task,
                                         run.run_id, run.machine_id,
                                         "no" if run.not_comparable else "yes",
                                         d["n"], d["mean"], d["stddev"], d["change_percent"],
                                         d["verdict"], d["p_value"]]))
    return buf.getvalue()


def _figure(width: float, height: float) -> Any:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_comparison_chart(comparison: Comparison) -> bytes:
    """Return a PNG: per metric, each model's mean over its rows, one marker per run."""
    tables = comparison.tables
    fig = _figure(10, 2.6 * max(1, len(tables)) + 0.8)
    run_count = len(comparison.runs)
    marked_labels = set()
    for index, table in enumerate(tables):
        ax = fig.add_subplot(len(tables), 1, index + 1)
        spec = table.metric
        models = sorted({model for model, _ in table.rows})
        ticks = [plot_label(model) for model in models]
        width = 0.8 / run_count
        for r, run in enumerate(comparison.runs):
            xs, means, errors = [], [], []
            marks: Dict[Verdict, List[Tuple[float, float]]] = {}
            for m, model in enumerate(models):
                present = [table.cells[row][r] for row in table.rows
                           if row[0] == model and table.cells[row][r].stats is not None]
                if not present:
                    continue
                x = m + (r - (run_count - 1) / 2) * width
                mean = sum(c.stats.mean for c in present) / len(present) * spec.display_scale
                xs.append(x)
                means.append(mean)
                errors.append(sum(c.stats.stddev for c in present) / len(present)
                              * spec.display_scale)
                verdicts = {c.verdict for c in present}
                for verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
                    if verdict in verdicts:
                        marks.setdefault(verdict, []).append((x, mean))
                        break
            # Markers with error bars, not bars: one artist per run keeps large fleets fast.
            label = plot_label(run.run_id) + (" (baseline)" if r == 0 else "") + \
                (" NOT COMPARABLE" if run.not_comparable else "")
            ax.errorbar(xs, means, yerr=errors, fmt="o", markersize=4, capsize=2,
                        linewidth=1, label=label if index == 0 else None,
                        markerfacecolor="none" if run.not_comparable else None)
            for verdict, points in marks.items():
                words = spec.words(verdict == Verdict.IMPROVED) + " beyond noise"
                ax.scatter([p[0] for p in points], [p[1] for p in points], s=70,
                           marker="v" if verdict == Verdict.REGRESSED else "^",
                           color=_VERDICT_COLORS[verdict], zorder=3,
                           label=None if words in marked_labels else words)
                marked_labels.add(words)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(ticks, fontsize="small", rotation=20 if len(models) > 6 else 0)
        ax.set_ylabel(f"{spec.label}\n({spec.unit})", fontsize="small")
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_xlim(-0.6, len(models) - 0.4)
    if tables:
        fig.axes[0].set_title("Mean over tasks per run (± mean standard deviation)",
                              fontsize="small")
        handles, labels = [], []
        for ax in fig.axes:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
        fig.legend(handles, labels, fontsize="x-small", loc="upper left",
                   bbox_to_anchor=(0.76, 0.98))
    fig.subplots_adjust(left=0.1, right=0.75, hspace=0.5)
    return _png(fig)


# ---------------------------------------------------------------------------------------- trend
def _parse_time(stamp: str) -> Optional[_dt.datetime]:
    try:
        return _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _step_row(spec: MetricSpec, step: TrendStep) -> Dict[str, Any]:
    point, cell = step.point, step.comparison
    stats = point.model_cell
    return {"run_id": point.run_id, "machine_id": point.machine_id,
            "hostname": point.hostname, "started_at": point.started_at,
            "ollama_version": point.ollama_version, "digest": point.digest[:12],
            "quantization": point.quantization,
            "n": stats.n if stats else None,
            "mean": stats.mean * spec.display_scale if stats else None,
            "stddev": stats.stddev * spec.display_scale if stats else None,
            "previous_run_id": step.previous_run_id,
            "change_percent": cell.change_percent, "verdict": cell.words(spec),
            "p_value": cell.p_value}


def trend_markdown(model: str, spec: MetricSpec, steps: Sequence[TrendStep], *,
                   test: str) -> str:
    """Return the trend as Markdown: one row per run, judged against the previous one."""
    lines = [f"# {_md(model)}: {spec.label} ({spec.unit}) over time", "",
             f"Each run against the previous run of the same machine with the same pinned "
             f"options; verdict from {test} per task (the worst task counts); change of the "
             "mean over all tasks.", "",
             "| run | machine | started | Ollama | digest | quant | mean ± sd | vs run | "
             "change | verdict |", "|" + " --- |" * 10]
    for step in steps:
        row = _step_row(spec, step)
        value = _number(row["mean"]) + (f" ± {_number(row['stddev'])}"
                                        if row["n"] and row["n"] > 1 else "")
        verdict = row["verdict"]
        if step.comparison.verdict == Verdict.REGRESSED:
            verdict = f"**{verdict}, beyond noise**"
        elif step.comparison.verdict == Verdict.IMPROVED:
            verdict = f"{verdict}, beyond noise"
        # Every text of the row comes from a history database someone else may have written.
        text = {key: _md(row[key] or "-") for key in (
            "run_id", "started_at", "ollama_version", "digest", "quantization",
            "previous_run_id")}
        machine = _md(row["hostname"] or row["machine_id"])
        lines.append(f"| {text['run_id']} | {machine} | {text['started_at']} | "
                     f"{text['ollama_version']} | {text['digest']} | "
                     f"{text['quantization']} | {value} | "
                     f"{text['previous_run_id']} | {_signed(row['change_percent'])} | "
                     f"{verdict} |")
    return "\n".join(lines) + "\n"


def trend_rows(spec: MetricSpec, steps: Sequence[TrendStep]) -> List[Dict[str, Any]]:
    return [_step_row(spec, step) for step in steps]


def trend_csv(spec: MetricSpec, steps: Sequence[TrendStep]) -> str:
    rows = trend_rows(spec, steps)
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["run_id"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) if isinstance(value, str) else value
                      for key, value in row.items()} for row in rows)
    return buf.getvalue()


def trend_json(model: str, spec: MetricSpec, steps: Sequence[TrendStep], *,
               test: str) -> str:
    return json.dumps({"model": model, "metric": spec.key, "unit": spec.unit, "test": test,
                       "runs": trend_rows(spec, steps)}, indent=2, allow_nan=False)


def _pinned_label(comparability_key: str) -> str:
    try:
        pinned = json.loads(comparability_key)
    except ValueError:
        return comparability_key
    return ", ".join(f"{k} {v}" for k, v in sorted(pinned.items()) if k != "suite")


def render_trend_chart(model: str, spec: MetricSpec, steps: Sequence[TrendStep]) -> bytes:
    """Return a PNG: the metric over time, one line per machine, regressions marked."""
    fig = _figure(10, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    # One line per machine and pinned options: runs at another num_ctx are another series.
    keys_of: Dict[str, set] = {}
    for step in steps:
        keys_of.setdefault(step.point.machine_id, set()).add(step.point.comparability_key)
    by_machine: Dict[str, List[TrendStep]] = {}
    for step in steps:
        if step.point.model_cell is None:
            continue
        label = plot_label(step.point.hostname or step.point.machine_id)
        if len(keys_of[step.point.machine_id]) > 1:
            label += " (" + plot_label(_pinned_label(step.point.comparability_key)) + ")"
        by_machine.setdefault(label, []).append(step)
    use_time = all(_parse_time(s.point.started_at) for s in steps)
    for machine, mine in sorted(by_machine.items()):
        xs: List[Any] = [_parse_time(s.point.started_at) if use_time else i
                         for i, s in enumerate(mine)]
        ys = [s.point.model_cell.mean * spec.display_scale for s in mine]
        errors = [s.point.model_cell.stddev * spec.display_scale for s in mine]
        ax.errorbar(xs, ys, yerr=errors, marker="o", markersize=3, capsize=2,
                    linewidth=1, label=machine)
        for verdict, marker in ((Verdict.REGRESSED, "v"), (Verdict.IMPROVED, "^")):
            hits = [(x, y) for x, y, s in zip(xs, ys, mine) if s.comparison.verdict == verdict]
            if hits:
                ax.scatter([h[0] for h in hits], [h[1] for h in hits], marker=marker, s=80,
                           color=_VERDICT_COLORS[verdict], zorder=3,
                           label=f"{spec.words(verdict == Verdict.IMPROVED)} beyond noise")
    if not by_machine:
        ax.text(0.5, 0.5, "no runs of this model hold this metric", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_title(f"{plot_label(model)}: {spec.label} per run (mean ± sd over repetitions)")
    ax.set_ylabel(spec.unit)
    ax.set_xlabel("run start (UTC)" if use_time else "run")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize="small", loc="best")
    fig.autofmt_xdate()
    return _png(fig)
