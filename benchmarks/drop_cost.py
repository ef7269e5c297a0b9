"""
What a cache drop costs a robot's writer: write latency of a rosbag-like process beside drops.

    source scripts/env.sh && python benchmarks/drop_cost.py               # this machine's kernel
    python benchmarks/drop_cost.py --phase-s 20 --every-s 2 --rate-mb 50

A separate process writes --rate-mb MB/s to a file in 1 MB write(2) calls (as a rosbag recorder
does: buffered, no fsync; the file rolls over at --roll-mb) and times every call. Three phases
of --phase-s seconds each, in turn: no drop, `1` (page cache) every --every-s seconds, `3` (page
cache, slab and shrinkers). The drops are the product's own (adapters.memory_sources.
CacheDropper: sync, then the level into --drop-path, /proc/sys/vm/drop_caches by default, which
needs root). Prints per phase the write latency p50 / p99 / max and the drop's own duration
(p50 / max), median over --repetitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from shadowhound_llm_bench.adapters.memory_sources import CacheDropper  # noqa: E402

MB = 1000 ** 2
CHUNK = 1 << 20

# The writer: paced 1 MiB write(2) calls; prints one latency (s) per line at the end.
WRITER_SOURCE = r'''
import os, sys, time
path, rate, seconds, roll = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
chunk = b'\x5a' * (1 << 20)
period = len(chunk) / rate
latencies = []
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
written = 0
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    t0 = time.monotonic()
    os.write(fd, chunk)
    latencies.append(time.monotonic() - t0)
    written += len(chunk)
    if written >= roll:
        os.close(fd)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written = 0
    n += 1
    wait = start + n * period - time.monotonic()
    if wait > 0:
        time.sleep(wait)
os.close(fd)
os.unlink(path)
sys.stdout.write('\n'.join('%.9f' % x for x in latencies) + '\n')
'''


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def run_phase(*, level: int, args: argparse.Namespace, folder: str) -> Dict[str, float]:
    """One phase: the writer for phase_s seconds, drops at `level` every every_s (0: none)."""
    path = os.path.join(folder, f"bag-{level}.db3")
    writer = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-I", "-c", WRITER_SOURCE, path, str(args.rate_mb * MB),
         str(args.phase_s), str(int(args.roll_mb * MB))], stdout=subprocess.PIPE, text=True)
    dropper = CacheDropper(path=args.drop_path)
    drops: List[float] = []
    deadline = time.monotonic() + args.phase_s
    next_drop = time.monotonic() + args.every_s
    while level and time.monotonic() < deadline - 0.5:
        time.sleep(max(0.0, next_drop - time.monotonic()))
        outcome = dropper.drop(level)
        if not outcome.dropped:
            writer.kill()
            writer.wait()
            raise SystemExit(f"drop_cost: {outcome.message}")
        drops.append(outcome.duration_s)
        next_drop += args.every_s
    out, _ = writer.communicate(timeout=args.phase_s + 60)
    latencies = [float(x) for x in out.split()]
    if writer.returncode != 0 or not latencies:
        raise SystemExit(f"drop_cost: the writer failed (exit {writer.returncode})")
    return {"p50_ms": 1e3 * quantile(latencies, 0.5), "p99_ms": 1e3 * quantile(latencies, 0.99),
            "max_ms": 1e3 * max(latencies), "writes": float(len(latencies)),
            "drops": float(len(drops)),
            "drop_p50_ms": 1e3 * statistics.median(drops) if drops else 0.0,
            "drop_max_ms": 1e3 * max(drops) if drops else 0.0}


def main(argv: Sequence[str] = ()) -> int:
    """Run the phases; print one line per phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--phase-s", type=float, default=20.0)
    parser.add_argument("--every-s", type=float, default=2.0)
    parser.add_argument("--rate-mb", type=float, default=50.0)
    parser.add_argument("--roll-mb", type=float, default=500.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--drop-path", default="/proc/sys/vm/drop_caches")
    parser.add_argument("--dir", default="/var/tmp", help="where the writer's file goes (disk)")
    args = parser.parse_args(list(argv) or None)
    results: Dict[int, List[Dict[str, float]]] = {0: [], 1: [], 3: []}
    with tempfile.TemporaryDirectory(prefix="drop-cost-", dir=args.dir) as folder:
        for repetition in range(args.repetitions):
            for level in results:
                print(f"[rep {repetition + 1}/{args.repetitions}] drops "
                      f"{'none' if not level else level}: {args.phase_s:g} s writing "
                      f"{args.rate_mb:g} MB/s", flush=True)
                results[level].append(run_phase(level=level, args=args, folder=folder))
    print(f"\nDROP COST beside a {args.rate_mb:g} MB/s writer (1 MiB write(2) calls, file in "
          f"{args.dir}; drops every {args.every_s:g} s into {args.drop_path}; medians of "
          f"{args.repetitions} phases of {args.phase_s:g} s)")
    print(f"{'drops':<8}{'write p50 ms':>14}{'p99 ms':>10}{'max ms':>10}{'writes':>8}"
          f"{'drops':>7}{'drop p50 ms':>13}{'drop max ms':>13}")
    for level, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{'none' if not level else level:<8}{med['p50_ms']:>14.3f}{med['p99_ms']:>10.3f}"
              f"{med['max_ms']:>10.2f}{med['writes']:>8.0f}{med['drops']:>7.0f}"
              f"{med['drop_p50_ms']:>13.1f}{med['drop_max_ms']:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
