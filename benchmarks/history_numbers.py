"""
Compare and history over 1,000 synthetic runs: import, compare, trend and database size.

    source scripts/env.sh && python benchmarks/history_numbers.py [--runs 1000] [--repeat 3]

Each synthetic run is a run folder with a tests.jsonl as the runner writes it (run_start,
model_start, load, one test record per repetition, model_end, run_end): 20 models x 5 tasks x
5 measured repetitions = 500 tests per run, spread over 5 machines. Decode speeds scatter 2 %
around each model's speed; one machine slows down by 20 % in its last tenth of runs. Timings
are medians of --repeat runs in this process (imports of Python modules excluded), plus the
CLI as a subprocess once (imports included). Folders and databases go to a temporary folder
(--keep to keep them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from shadowhound_llm_bench.core.runs.metric_trend import judge_trend  # noqa: E402
from shadowhound_llm_bench.core.runs.run_comparison import (  # noqa: E402
    compare_runs, metric_spec)
from shadowhound_llm_bench.reports.comparison_report import (  # noqa: E402
    comparison_markdown, render_comparison_chart, render_trend_chart, trend_markdown)
from shadowhound_llm_bench.reports.history_db import HistoryDb  # noqa: E402
from shadowhound_llm_bench.reports.history_recording import record_finished_run  # noqa: E402
from shadowhound_llm_bench.reports.run_snapshot_reader import read_runs  # noqa: E402

MODELS = [f"model{i:02d}:{(i % 4 + 1) * 7}b" for i in range(20)]
TASKS = ["status_report", "navigation_plan", "spatial_choice", "tool_call", "summary"]
REPETITIONS = 5
MACHINES = 5
OUTPUT = "The robot reached the kitchen; battery 64 percent; waiting for the next order."


def _line(kind: str, stamp: str, **fields: object) -> str:
    return json.dumps({"type": kind, "session": 1, "stamp": stamp, **fields}) + "\n"


def write_synthetic_run(root: Path, index: int, runs: int, rng: random.Random) -> Path:
    """Write one run folder; machine index % MACHINES, a day per 24 runs."""
    machine = index % MACHINES
    day, hour = divmod(index // MACHINES, 24)
    run_id = f"2026{1 + day // 28:02d}{1 + day % 28:02d}T{hour:02d}0000Z_m{machine}"
    stamp = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{hour:02d}:00:00+00:00"
    slow = 0.8 if machine == 0 and index >= runs * 9 // 10 else 1.0
    folder = root / run_id
    folder.mkdir(parents=True)
    lines = [_line("run_start", stamp, run_id=run_id, host="http://localhost:11434",
                   ollama_version="0.12.6",
                   options={"num_ctx": 4096, "num_predict": 512, "temperature": 0.0,
                            "seed": 42, "repetitions": REPETITIONS},
                   suite={"name": "synthetic", "tasks": [{"id": t} for t in TASKS]},
                   models=MODELS, guarded=False, note="synthetic",
                   machine={"machine_id": f"robot-{machine}", "hostname": f"thor-{machine}"})]
    for m, model in enumerate(MODELS):
        speed = (60.0 - 2.5 * m) * slow
        lines.append(_line("model_start", stamp, model=model, metadata={
            "name": model, "digest": f"{m:064x}", "quantization": "Q4_K_M"}))
        lines.append(_line("load", stamp, model=model, ok=True, attempt=1, client_s=3.0,
                           load_s=rng.gauss(2.8, 0.1)))
        for task in TASKS:
            for rep in range(REPETITIONS):
                lines.append(_line(
                    "test", stamp, model=model, task=task, repetition=rep, warmup=False,
                    status="ok", output=OUTPUT, score={"percent": rng.choice((60.0, 80.0))},
                    metrics={"decode_tokens_per_s": rng.gauss(speed, speed * 0.02),
                             "ttft_ms": rng.gauss(150.0 + 10 * m, 8.0),
                             "prompt_tokens_per_s": rng.gauss(900.0, 20.0),
                             "e2e_latency_s": rng.gauss(4.0, 0.2), "load_s": 0.01,
                             "eval_count": 120, "prompt_tokens": 80}))
        lines.append(_line("model_end", stamp, model=model, status="ok",
                           memory={"memory_peak_bytes": int(rng.gauss(9e9, 1e8))}))
    lines.append(_line("run_end", stamp, status="ok", message="synthetic"))
    (folder / "tests.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder


def timed(action: Callable[[], object], repeat: int) -> Tuple[float, List[float]]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic folders")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="history_numbers_"))
    try:
        return _measure(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}")


def _measure(work: Path, args: argparse.Namespace) -> int:
    rng = random.Random(7)
    runs_root = work / "runs"
    start = time.perf_counter()
    folders = [write_synthetic_run(runs_root, i, args.runs, rng) for i in range(args.runs)]
    generated_s = time.perf_counter() - start
    log_bytes = sum((f / "tests.jsonl").stat().st_size for f in folders)
    print(f"synthetic runs: {len(folders)} folders, {len(MODELS)} models x {len(TASKS)} tasks "
          f"x {REPETITIONS} repetitions, {MACHINES} machines; tests.jsonl total "
          f"{log_bytes / 1e6:.0f} MB; written in {generated_s:.1f} s")

    # Import: every folder read (tests.jsonl parsed and summarized), then one transaction.
    def import_folders() -> None:
        path = work / "import.sqlite3"
        path.unlink(missing_ok=True)
        snapshots = read_runs(folders, require_finished=True)
        with HistoryDb(path) as db:
            db.record_runs(snapshots)

    read_s, _ = timed(lambda: read_runs(folders, require_finished=True), args.repeat)
    import_s, _ = timed(import_folders, args.repeat)
    fleet_db = work / "import.sqlite3"
    db_bytes = fleet_db.stat().st_size

    def merge_database() -> None:
        path = work / "merge.sqlite3"
        path.unlink(missing_ok=True)
        with HistoryDb(path) as db:
            db.import_database(fleet_db)

    merge_s, _ = timed(merge_database, args.repeat)

    def merge_again() -> None:
        with HistoryDb(work / "merge.sqlite3") as db:
            count = db.import_database(fleet_db)
            assert count.added == 0, count

    remerge_s, _ = timed(merge_again, args.repeat)

    # One run recorded at the end of a run, into the full database (the node's and CLI's path).
    extra = write_synthetic_run(work / "extra", args.runs, args.runs, rng)
    one_db = work / "one.sqlite3"

    def record_one() -> None:
        shutil.copy(fleet_db, one_db)
        record_finished_run(extra, db_path=one_db)

    copy_s, _ = timed(lambda: shutil.copy(fleet_db, one_db), args.repeat)
    record_s, _ = timed(record_one, args.repeat)

    # Compare 10 runs of one machine across its slowdown: 5 before, 5 after.
    machine0 = [f for i, f in enumerate(folders) if i % MACHINES == 0]
    slow_set = set(folders[args.runs * 9 // 10:])
    first_slow = next((i for i, f in enumerate(machine0) if f in slow_set), len(machine0) - 5)
    ten = machine0[max(0, first_slow - 5):first_slow + 5]

    def compare_ten() -> None:
        comparison = compare_runs(read_runs(ten))
        comparison_markdown(comparison)
        render_comparison_chart(comparison)

    compare_s, _ = timed(compare_ten, args.repeat)
    comparison = compare_runs(read_runs(ten))
    tables_s, _ = timed(lambda: compare_runs(read_runs(ten)), args.repeat)
    regressed = sum(1 for t in comparison.tables for row in t.rows
                    for c in t.cells[row][1:] if c.verdict.value == "regressed")

    # Trend of one model over every run (all machines): query, judge, Markdown and PNG.
    spec = metric_spec("decode_tps")

    def trend() -> None:
        with HistoryDb(fleet_db, create=False) as db:
            points = db.trend(MODELS[0], "decode_tps")
        steps = judge_trend(spec, points)
        trend_markdown(MODELS[0], spec, steps, test="")
        render_trend_chart(MODELS[0], spec, steps)

    trend_s, _ = timed(trend, args.repeat)
    with HistoryDb(fleet_db, create=False) as db:
        points = db.trend(MODELS[0], "decode_tps")
    steps = judge_trend(spec, points)
    slower = sum(1 for s in steps if s.comparison.verdict.value == "regressed")
    first_slow_id = machine0[first_slow].name if first_slow < len(machine0) else ""
    planted = any(s.point.run_id == first_slow_id and s.comparison.verdict.value == "regressed"
                  for s in steps)

    cli = [sys.executable, "-m", "shadowhound_llm_bench.cli"]
    start = time.perf_counter()
    subprocess.run(cli + ["compare", *map(str, ten), "--plot", str(work / "c.png"),
                          "--output", str(work / "c.md")], check=True, capture_output=True)
    cli_compare_s = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(cli + ["history", "--db", str(fleet_db), "--model", MODELS[0], "--plot",
                          str(work / "t.png"), "--output", str(work / "t.md")], check=True,
                   capture_output=True)
    cli_trend_s = time.perf_counter() - start

    n = len(folders)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"medians of {args.repeat}; target under 2 s each; {os.cpu_count()} cores, "
          f"load average now {load}")
    print(f"import {n} run folders (read + one transaction): {import_s:.2f} s "
          f"({import_s / n * 1000:.1f} ms per run; reading the logs alone {read_s:.2f} s)")
    print(f"import a {n}-run database into an empty one:       {merge_s:.2f} s")
    print(f"import the same database again (all duplicates):   {remerge_s:.2f} s")
    print(f"record one finished run into the {n}-run database: "
          f"{record_s - copy_s:.2f} s (copy of the database for the repeat excluded)")
    print(f"compare 10 runs (read, test, Markdown, PNG):       {compare_s:.2f} s "
          f"(tables alone {tables_s:.2f} s; {sum(len(t.rows) for t in comparison.tables)} "
          f"rows x 9 runs, {regressed} cells slower beyond noise)")
    print(f"trend of one model over {len(points)} runs (query, judge, Markdown, PNG): "
          f"{trend_s:.2f} s ({slower} of {len(steps) - MACHINES} steps slower beyond noise; "
          f"the planted 20 % slowdown of robot-0 {'among them' if planted else 'MISSED'})")
    print(f"CLI as a subprocess, imports included: compare 10 runs {cli_compare_s:.2f} s, "
          f"history trend {cli_trend_s:.2f} s")
    print(f"database size: {db_bytes / 1e6:.1f} MB for {n} runs "
          f"({db_bytes / n / 1e3:.0f} kB per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
