"""Rebuild every report of a run folder from its tests.jsonl alone."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.runs.run_records import RunSummary, summarize_run
from .csv_report import CSV_NAME, write_csv
from .jsonl_log import LOG_NAME, read_records
from .markdown_report import MARKDOWN_NAME, write_markdown
from .memory_plot import PLOT_NAME, write_memory_plot
from .results_json import RESULTS_NAME, write_results_json

# A canceled run's plot is drawn this long after its result was handed back.
PLOT_DELAY_S = 2.0


class ReportError(RuntimeError):
    """A run folder has no usable log."""


@dataclass(frozen=True)
class ReportPaths:
    run_dir: Path
    jsonl_log: Path
    results_json: Path
    csv: Path
    markdown: Path
    memory_plot: Path


def report_paths(run_dir: Path) -> ReportPaths:
    run_dir = Path(run_dir)
    return ReportPaths(run_dir=run_dir, jsonl_log=run_dir / LOG_NAME,
                       results_json=run_dir / RESULTS_NAME, csv=run_dir / CSV_NAME,
                       markdown=run_dir / MARKDOWN_NAME, memory_plot=run_dir / PLOT_NAME)


def load_summary(run_dir: Path) -> RunSummary:
    paths = report_paths(run_dir)
    if not paths.jsonl_log.is_file():
        raise ReportError(f"{run_dir} has no {LOG_NAME}")
    records, _bad = read_records(paths.jsonl_log)
    try:
        return summarize_run(records)
    except ValueError as exc:
        raise ReportError(f"{paths.jsonl_log}: {exc}") from exc


def render_reports(run_dir: Path, *, plot: bool = True) -> ReportPaths:
    """Write results.json, results.csv, summary.md and (unless plot=False) memory.png."""
    paths = report_paths(run_dir)
    summary = load_summary(run_dir)
    write_results_json(summary, paths.results_json)
    write_csv(summary, paths.csv)
    write_markdown(summary, paths.markdown)
    if plot:
        write_memory_plot(summary, paths.memory_plot)
    return paths


def render_plot_later(run_dir: Path, *, delay_s: float = PLOT_DELAY_S) -> threading.Thread:
    """
    Draw memory.png on a thread, delay_s from now (a canceled run returns its result first).

    Drawing holds the interpreter for a second or more on a busy machine: started at once, it
    would slow the very result it was moved out of the way of.
    """
    def draw() -> None:
        time.sleep(delay_s)
        paths = report_paths(run_dir)
        write_memory_plot(load_summary(run_dir), paths.memory_plot)

    thread = threading.Thread(target=draw, name="memory-plot", daemon=False)
    thread.start()
    return thread
