"""
The seed's memory-management table on the real Ollama server, in a memory-limited container.

Run (Docker engine reachable; the real releases in ../shared/ollama or SHB_OLLAMA_DIST):

    source scripts/env.sh && python benchmarks/seed_table_real.py              # every release
    source scripts/env.sh && python benchmarks/seed_table_real.py --smoke      # a short check

The seed's five models (phi4:14b 9 GB, qwen2.5-coder:32b and qwq:32b 20 GB, llama3.3:70b 42 GB,
deepseek-r1:7b 5 GB, in that order) are synthetic F16 models at 0.035 of their file sizes
(real_ollama/seed_shapes.py). Each configuration (the seed's four and adaptive, defined once in
seed_table_parts.CONFIGS) runs the product against a fresh container of the real release whose
memory cgroup is limited to --limit-mib. Nothing is scripted: a load fails only when the kernel
kills the server's runner or the server refuses it. Verdicts come from the container's cgroup
files, Docker's OOM events and the server's replies, read by this script, never by the product.

The limit reproduces the seed's mechanism: Ollama keeps the models it served cached (on a CPU up
to 3 at once, evicting the least recently used for a fourth), so without management the
llama3.3:70b stand-in is loaded beside two cached 20 GB stand-ins and the kernel kills its
runner; the largest model beside the smallest, and three cached mid-sized models, still fit.
The oracle (seed_oracle.py) is the cheapest schedule of unloads and restarts that avoids every
failure, computed after the run from the /api/ps sizes and unload/restart times measured in it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from seed_oracle import describe, oracle_from_runs  # noqa: E402
from seed_real_parts import (  # noqa: E402
    Experiment, RealRow, footprints_of, idle_bytes_of, measure_restart_s, run_configuration,
    unloads_of)
from seed_table import SEED_ROWS, render_table  # noqa: E402
from seed_table_parts import CONFIGS  # noqa: E402

from shadowhound_llm_bench import real_ollama  # noqa: E402
from shadowhound_llm_bench.real_ollama.seed_shapes import (  # noqa: E402
    SEED_FILE_SCALE, SEED_NAMES, SEED_SHAPES)

MIB = 2 ** 20
GIB = 2 ** 30
# 2.5 GiB = 77 GB of the seed's Thor at this scale (see the module docstring).
LIMIT_MIB = 2560
# The smoke: the seed's deepseek-r1:7b and phi4:14b stand-ins, then the 804 MB model; alone
# the last fits 1.2 GiB, beside the two cached ones it is killed.
SMOKE_SHAPES = (SEED_SHAPES[4], SEED_SHAPES[0], real_ollama.models.BIG)
SMOKE_LIMIT_MIB = 1228
SMOKE_CONFIGS = ("none", "full")
MANAGED = ("full", "adaptive")
STARTED = time.monotonic()


def say(text: str) -> None:
    """One progress line, with the time since start."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {text}", flush=True)


def thor_gb(n_bytes: float) -> str:
    """Bytes here as GB of the seed's Thor (file-size scale)."""
    return f"{n_bytes / SEED_FILE_SCALE / 1e9:.0f}"


def table_lines(rows: Sequence[RealRow], oracle_s: Optional[float], markdown: bool) -> List[str]:
    """Lay out one release's table: failures (physics / product), times, ground-truth peaks."""
    header = ["Configuration", "Models failed", "Physics: OOM kills / refusals",
              "Product: skips / pressure stops", "Other failures", "Total s", "Mgmt s",
              "Oracle mgmt s", "Peak working set GiB (Thor GB)", "cgroup max_usage GiB",
              "Kernel OOM kills (cgroup / Docker)", "Most models loaded",
              "Seed: failures / time / peak"]
    body = []
    for r in rows:
        seed = SEED_ROWS.get(r.key, ("-", "-", "-"))
        body.append([
            r.label, f"{r.models_failed}/{r.models}", f"{r.kill_failures} / {r.refusals}",
            f"{r.skips} / {r.pressure_stops}",
            f"{r.other_load_failures + r.other_model_failures}", f"{r.total_s:.1f}",
            f"{r.management_s:.2f}", "-" if oracle_s is None else f"{oracle_s:.2f}",
            f"{r.peak_working_set_bytes / GIB:.2f} ({thor_gb(r.peak_working_set_bytes)})",
            f"{r.peak_max_usage_bytes / GIB:.2f}",
            f"{r.cgroup_oom_kills} / {r.docker_oom_events}", str(r.most_loaded),
            " / ".join(seed)])
    return render_table(header, body, markdown)


def verdicts(rows: Sequence[RealRow]) -> List[str]:
    """Check the table's claims against the ground truth: each MET or MISSED, with numbers."""
    lines = []
    for r in rows:
        if r.key == "none":
            ok = r.kill_failures > 0 and r.cgroup_oom_kills > 0 and bool(r.kill_texts)
            lines.append(f"  [{'MET' if ok else 'MISSED'}] no management fails by physics: "
                         f"{r.kill_failures} loads killed, {r.cgroup_oom_kills} kernel OOM kills "
                         f"in the cgroup; the server said: {' | '.join(r.kill_texts) or '-'}")
        if r.key in MANAGED:
            ok = r.models_failed == 0 and r.physics_failures == 0 and r.cgroup_oom_kills == 0
            lines.append(f"  [{'MET' if ok else 'MISSED'}] {r.label}: 0 failures: "
                         f"{r.models_failed} models failed, {r.physics_failures} loads failed, "
                         f"{r.cgroup_oom_kills} kernel OOM kills, peak "
                         f"{r.peak_working_set_bytes / GIB:.2f} of "
                         f"{r.limit_bytes / GIB:.2f} GiB")
    return lines


def run_release(args: argparse.Namespace, dist: Any, docker_client: Any,
                out_dir: Path) -> Dict[str, Any]:
    """Every chosen configuration on one release; the table, oracle and verdicts."""
    shapes = SMOKE_SHAPES if args.smoke else SEED_SHAPES
    with real_ollama.start_local_server(dist) as maker:
        models = tuple(real_ollama.ensure_models(maker, shapes))
    exp = Experiment(dist=dist, models=models, limit_bytes=args.limit_mib * MIB,
                     memory_scale=SEED_FILE_SCALE, num_ctx=args.num_ctx,
                     num_predict=args.num_predict, repetitions=args.repetitions,
                     deadline_s=args.config_deadline_s, suite=args.suite)
    started = time.monotonic()
    rows: List[RealRow] = []
    for config in [c for c in CONFIGS if c.key in args.configs]:
        say(f"{dist.version}: {config.label}: fresh container, limit {args.limit_mib} MiB")
        row = run_configuration(config, exp=exp, docker_client=docker_client,
                                results_root=out_dir / dist.version / "runs", progress=say,
                                management_costs_path=str(out_dir / dist.version / "costs.json"))
        rows.append(row)
        say(f"{dist.version}: {config.label}: {row.models_failed} models failed "
            f"({row.kill_failures} killed, {row.skips} skipped), {row.total_s:.1f} s, "
            f"management {row.management_s:.2f} s, peak {row.peak_working_set_bytes / GIB:.2f}"
            f" GiB, {row.cgroup_oom_kills} OOM kills")
    run_s = time.monotonic() - started
    restarts = [s for r in rows for s in r.restarts_s]
    if not restarts:  # no configuration restarted: the oracle's restart cost is measured here
        restarts = [measure_restart_s(docker_client, dist, limit_bytes=exp.limit_bytes)]
    schedule, inputs = oracle_from_runs(
        order=models, footprints=footprints_of(rows), limit_bytes=exp.limit_bytes,
        server_bytes=idle_bytes_of(rows) or 0, unloads=unloads_of(rows), restarts_s=restarts)
    oracle_s = schedule.management_s if schedule.feasible else None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}, CPU build"
    title = (f"Seed's table on the real Ollama {dist.version} ({machine}; {stamp}): container "
             f"limit {args.limit_mib} MiB, {len(models)} models, num_ctx {args.num_ctx}, "
             f"{args.num_predict} tokens x {args.repetitions}; {run_s:.0f} s")
    sizes = ", ".join(f"{SEED_NAMES.get(m, m)} {inputs.footprint_bytes.get(m, 0) / 1e6:.0f} MB"
                      for m in models)
    lines = ["", title, *table_lines(rows, oracle_s, markdown=False), "",
             f"/api/ps sizes: {sizes}; the server alone {inputs.server_bytes / MIB:.0f} MiB",
             f"Oracle: {describe(schedule, inputs)}", "Verdicts (cgroup, Docker, server):",
             *verdicts(rows), "Notes:"]
    lines += [f"  {r.label}: {r.note} [management: {r.management_note}]" for r in rows]
    markdown = [title, "", *table_lines(rows, oracle_s, markdown=True), "",
                f"Oracle: {describe(schedule, inputs)}", "", *[v.strip() for v in verdicts(rows)]]
    (out_dir / f"seed_table_real-{dist.version}.md").write_text("\n".join(markdown) + "\n")
    return {"version": dist.version, "run_s": run_s, "limit_bytes": exp.limit_bytes,
            "models": list(models), "rows": [r.as_dict() for r in rows],
            "oracle": {"feasible": schedule.feasible, "management_s": schedule.management_s,
                       "actions": list(schedule.actions), "note": schedule.note},
            "lines": lines}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("--releases", nargs="+", default=[],
                        help="Ollama versions (default: every release found)")
    parser.add_argument("--configs", nargs="+", default=[c.key for c in CONFIGS],
                        choices=[c.key for c in CONFIGS])
    parser.add_argument("--limit-mib", type=int, default=0,
                        help=f"container memory limit (default {LIMIT_MIB}; smoke "
                        f"{SMOKE_LIMIT_MIB})")
    parser.add_argument("--num-ctx", type=int, default=4096)
    parser.add_argument("--num-predict", type=int, default=4)
    parser.add_argument("--suite", default=str(HERE / "seed_real_suite.yaml"),
                        help="suite name or file (default: one short task)")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--config-deadline-s", type=float, default=600.0)
    parser.add_argument("--smoke", action="store_true",
                        help="three small models, none and full, one token")
    parser.add_argument("--results-dir", default="",
                        help="default: results/benchmarks/real-<timestamp>/")
    parser.add_argument("--json", default="", help="also write every number to this file")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the table on each release and print it."""
    args = build_parser().parse_args(argv)
    if args.smoke:
        if args.configs == [c.key for c in CONFIGS]:
            args.configs = list(SMOKE_CONFIGS)
        args.num_predict = 1
    args.limit_mib = args.limit_mib or (SMOKE_LIMIT_MIB if args.smoke else LIMIT_MIB)
    logging.basicConfig(level=logging.WARNING, format="           guard: %(message)s")
    os.environ.setdefault("DOCKER_HOST", "unix:///tmp/dockerd/docker.sock")
    import docker

    try:
        docker_client = docker.from_env(timeout=60)
        docker_client.ping()
    except Exception as exc:  # any engine error means the benchmark cannot run here
        print(f"seed_table_real: no Docker engine at {os.environ['DOCKER_HOST']}: {exc}",
              file=sys.stderr)
        return 1
    dists = [d for d in real_ollama.available_dists()
             if not args.releases or d.version in args.releases]
    if not dists:
        print("seed_table_real: no real Ollama release found (../shared/ollama, SHB_OLLAMA_DIST"
              " or an `ollama` on PATH)", file=sys.stderr)
        return 1
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.results_dir or HERE.parent / "results" / "benchmarks" / f"real-{stamp}")
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"seed_table_real: releases {', '.join(d.version for d in dists)}; results in {out_dir}")
    results = []
    try:
        for dist in dists:
            results.append(run_release(args, dist, docker_client, out_dir))
    finally:
        docker_client.close()
    report = [line for result in results for line in result["lines"]]
    report.append(f"\nwhole script: {time.monotonic() - STARTED:.0f} s")
    for line in report:
        print(line, flush=True)
    (out_dir / "seed_table_real_output.txt").write_text("\n".join(report) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
