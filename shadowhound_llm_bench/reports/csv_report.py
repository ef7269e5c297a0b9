"""results.csv: one row per model and task (plus one per model that measured nothing)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..core.runs.inert_text import csv_cell
from ..core.runs.run_records import RunSummary
from .atomic_write import write_atomic

CSV_NAME = "results.csv"
CSV_METRICS = ("decode_tokens_per_s", "ttft_ms", "e2e_latency_s", "prompt_tokens_per_s",
               "inter_token_ms_mean", "load_s", "eval_count")
STAT_NAMES = ("mean", "median", "stddev", "min", "max")
META_COLUMNS = ("digest", "quantization", "parameter_size", "size_bytes")


def csv_columns() -> List[str]:
    cols = ["model", "status", "reason", "task", "tests_ok", "tests_failed", "truncated",
            "ended_early"]
    cols += list(META_COLUMNS)
    for metric in CSV_METRICS:
        cols += [f"{metric}_{s}" for s in STAT_NAMES]
    cols += [f"score_{s}" for s in STAT_NAMES]
    cols.append("concurrent_with")  # models tested at the same time, space-separated
    cols.append("model_j_per_token")  # the model's energy per token; empty: not measured
    return cols


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def render_csv(summary: RunSummary) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for model in summary.models:
        # Text cells come from goals, servers and models: no spreadsheet may run them.
        base: Dict[str, Any] = {"model": csv_cell(model.model), "status": csv_cell(model.status),
                                "reason": csv_cell(model.reason),
                                "concurrent_with": csv_cell(" ".join(model.concurrent_with)),
                                "model_j_per_token": (model.energy or {}).get("j_per_token")}
        for key in META_COLUMNS:
            value = model.metadata.get(key, "")
            base[key] = csv_cell(value) if isinstance(value, str) else value
        if not model.tasks:
            writer.writerow({**base, "task": "", "tests_ok": 0,
                             "tests_failed": model.tests_failed, "truncated": 0,
                             "ended_early": 0})
            continue
        for task in model.tasks:
            row = dict(base, task=csv_cell(task.task), tests_ok=task.tests_ok,
                       tests_failed=task.tests_failed, truncated=task.truncated,
                       ended_early=task.ended_early)
            for metric in CSV_METRICS:
                stats = task.metrics.get(metric) or {}
                for s in STAT_NAMES:
                    row[f"{metric}_{s}"] = _fmt(stats.get(s))
            for s in STAT_NAMES:
                row[f"score_{s}"] = _fmt((task.score or {}).get(s))
            writer.writerow(row)
    return out.getvalue()


def write_csv(summary: RunSummary, path: Path) -> None:
    write_atomic(path, render_csv(summary))
