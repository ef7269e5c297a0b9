"""The `compare` and `history` verbs of shadowhound-llm-bench: parse, call, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, TextIO

from .core.runs.inert_text import markdown_cell, terminal_line, terminal_text
from .core.runs.metric_trend import judge_trend
from .core.runs.run_comparison import (DEFAULT_ALPHA, DEFAULT_MIN_CHANGE_PERCENT, METRICS_BY_KEY,
                                       TEST_DETAIL, ComparisonError, compare_runs, metric_spec)
from .reports.atomic_write import write_atomic
from .reports.comparison_report import (comparison_csv, comparison_dict, comparison_markdown,
                                        render_comparison_chart, render_trend_chart,
                                        trend_csv, trend_json, trend_markdown)
from .reports.history_db import HistoryDb, HistoryError, default_history_db_path
from .reports.history_recording import HistoryCheck, record_finished_run
from .reports.run_snapshot_reader import RunLoadError, read_runs, resolve_run

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
FORMATS = ("markdown", "csv", "json")


def _add_test_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="significance level of the noise test (default 0.05)")
    parser.add_argument("--min-change", type=float, default=DEFAULT_MIN_CHANGE_PERCENT,
                        metavar="PERCENT",
                        help="smallest change ever called faster/slower (default 1 %%)")
    parser.add_argument("--format", choices=FORMATS, default="markdown")
    parser.add_argument("--output", default="", help="write the table here (default: stdout)")


def add_history_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history-db", default="", metavar="PATH",
                        help=f"history database (default {default_history_db_path()})")


def add_verbs(sub: argparse._SubParsersAction, default_results_dir: str) -> None:
    """Add `compare` and `history` to the CLI's sub-commands."""
    compare = sub.add_parser("compare", help="compare runs: change and verdict per metric")
    compare.add_argument("runs", nargs="+", metavar="RUN",
                         help="run folders or run ids under --results-dir; the first is the "
                         "baseline")
    compare.add_argument("--results-dir", default=default_results_dir,
                         help="folder holding the runs named by id")
    compare.add_argument("--metric", action="append", choices=list(METRICS_BY_KEY),
                         help="compare only this metric (repeatable; default all present)")
    compare.add_argument("--plot", default="compare.png", help="PNG chart path ('' for none)")
    _add_test_options(compare)
    history = sub.add_parser(
        "history", help="a model's trend over recorded runs; `history import` merges runs")
    history.add_argument("--model", help="the model whose trend is shown")
    history.add_argument("--metric", default="decode_tps", choices=list(METRICS_BY_KEY))
    history.add_argument("--machine", default="", help="only this machine id")
    history.add_argument("--db", default="", metavar="PATH",
                         help=f"history database (default {default_history_db_path()})")
    history.add_argument("--plot", default="history.png", help="PNG chart path ('' for none)")
    _add_test_options(history)
    actions = history.add_subparsers(dest="history_action")
    merge = actions.add_parser("import", help="merge run folders or another history database")
    merge.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="run folders, or a history database file")
    merge.add_argument("--db", default="", metavar="PATH", dest="import_db",
                       help="history database to import into")
    merge.add_argument("--machine-id", default="",
                       help="machine of run folders that carry no machine record (default: "
                       "this machine)")


def _error(message: object) -> None:
    print(f"error: {terminal_line(message)}", file=sys.stderr)


def _emit(text: str, output: str, out: TextIO) -> None:
    # The last layer before a terminal or a file someone cats: no control byte on any line
    # (the tables already made each cell inert for Markdown or CSV).
    text = terminal_text(text)
    if output:
        write_atomic(Path(output), text if text.endswith("\n") else text + "\n")
    else:
        print(text, file=out, end="" if text.endswith("\n") else "\n")


def _write_plot(path: str, png: bytes) -> None:
    if path:
        write_atomic(Path(path), png)
        print(f"chart: {path}", file=sys.stderr)


def run_compare(args: argparse.Namespace, out: TextIO) -> int:
    """Compare runs (folders or ids) against the first and print the tables."""
    try:
        folders = [resolve_run(arg, Path(args.results_dir).expanduser()) for arg in args.runs]
        snapshots = read_runs(folders)
        comparison = compare_runs(snapshots, metrics=args.metric, alpha=args.alpha,
                                  min_change_percent=args.min_change)
    except (RunLoadError, ComparisonError) as exc:
        _error(exc)
        return EXIT_USAGE
    if not comparison.tables:
        print("error: the runs hold none of the metrics asked for", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        text = json.dumps(comparison_dict(comparison), indent=2, allow_nan=False)
    elif args.format == "csv":
        text = comparison_csv(comparison)
    else:
        text = comparison_markdown(comparison)
    _emit(text, args.output, out)
    _write_plot(args.plot, render_comparison_chart(comparison))
    return EXIT_OK


def _db_path(value: str) -> Path:
    return Path(value).expanduser() if value else default_history_db_path()


def _import(args: argparse.Namespace, out: TextIO) -> int:
    db_path = _db_path(args.import_db or args.db)
    sources = [Path(s).expanduser() for s in args.sources]
    databases = [s for s in sources if s.is_file()]
    folders = [s for s in sources if not s.is_file()]
    if databases and folders or len(databases) > 1:
        print("error: import either run folders or one database at a time", file=sys.stderr)
        return EXIT_USAGE
    try:
        if databases:
            with HistoryDb(db_path) as db:
                count = db.import_database(databases[0])
        else:
            # Every folder is read before the database is touched: one bad folder, no write.
            snapshots = read_runs(folders, require_finished=True, machine_id=args.machine_id)
            with HistoryDb(db_path) as db:
                count = db.record_runs(snapshots)
    except (RunLoadError, HistoryError, OSError) as exc:
        _error(exc)
        return EXIT_USAGE
    print(f"imported {count.added} run(s), {count.already_present} already present, "
          f"into {db_path}", file=out)
    return EXIT_OK


def _overview(args: argparse.Namespace, out: TextIO) -> int:
    """Print what the database holds: machines, runs and models (no --model given)."""
    path = _db_path(args.db)
    try:
        with HistoryDb(path, create=False) as db:
            rows = db.overview()
    except HistoryError as exc:
        _error(exc)
        return EXIT_USAGE
    lines = [f"# History {path}", "", "| machine | host | runs | first | last | models |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(markdown_cell(v) for v in (m, h or "-", n, first, last, models))
              + " |" for m, h, n, first, last, models in rows]
    lines += ["", "Trend of one model: history --model NAME --metric "
              + "|".join(METRICS_BY_KEY)]
    _emit("\n".join(lines), args.output, out)
    return EXIT_OK


def run_history(args: argparse.Namespace, out: TextIO) -> int:
    """Show a model's trend, or import runs (`history import`)."""
    if args.history_action == "import":
        return _import(args, out)
    if not args.model:
        return _overview(args, out)
    spec = metric_spec(args.metric)
    try:
        with HistoryDb(_db_path(args.db), create=False) as db:
            points = db.trend(args.model, args.metric, machine_id=args.machine)
    except HistoryError as exc:
        _error(exc)
        return EXIT_USAGE
    if not points:
        _error(f"no recorded run of {args.model}"
               + (f" on machine {args.machine}" if args.machine else ""))
        return EXIT_USAGE
    steps = judge_trend(spec, points, alpha=args.alpha, min_change_percent=args.min_change)
    if args.format == "json":
        text = trend_json(args.model, spec, steps, test=TEST_DETAIL)
    elif args.format == "csv":
        text = trend_csv(spec, steps)
    else:
        text = trend_markdown(args.model, spec, steps, test=TEST_DETAIL)
    _emit(text, args.output, out)
    _write_plot(args.plot, render_trend_chart(args.model, spec, steps))
    return EXIT_OK


def record_run_history(run_dir: Optional[Path], db_value: str, out: TextIO) -> Optional[
        HistoryCheck]:
    """Record a finished run from the `run` verb; a failure is reported, never raised."""
    if run_dir is None:
        return None
    try:
        check = record_finished_run(run_dir, db_path=_db_path(db_value))
    except (RunLoadError, HistoryError, OSError) as exc:
        print(f"history: not recorded: {terminal_line(exc)}", file=out)
        return None
    print(f"history: {terminal_line(check.summary)}", file=out)
    return check
