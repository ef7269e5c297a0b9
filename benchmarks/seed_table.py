"""
The seed's memory-management table on the simulated machines, with no scripted faults.

Run (Docker engine reachable, e.g. DOCKER_HOST=unix:///tmp/dockerd/docker.sock):

    source scripts/env.sh && python benchmarks/seed_table.py            # both machines
    source scripts/env.sh && python benchmarks/seed_table.py --smoke    # a short check

Parts (--part, repeatable; default all three):
  table     the seed's five models through the real BenchmarkRunner and memory guard, once per
            machine (--scenarios; default `thor`, unified memory, and `thor_cgroup`, memory
            charged to the container), a fresh simulator container per configuration inside the
            machine's memory cgroup, the scenario's ROS/Nav2 load standing in that cgroup, the
            machine's caches and driver pool dropped before each configuration (a fresh boot).
            Neither scenario has scripted faults: every failure comes from the machine's
            physics (Ollama's fit check, page cache, the driver's pool, kernel OOM kills).
            One table per machine, printed in one run, Markdown and PNG.
  node      CPU % and RSS of the llm_bench node while it publishes memory at 2 Hz and at 10 Hz
            during a run sent by the console client.
  sampling  latency of one memory sample through the cgroup files and the Docker stats API.
Results go to results/benchmarks/<timestamp>/ (--results-dir to choose).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from memory_columns import memory_table_lines  # noqa: E402
from seed_table_node import (NodeCost, SamplingLatency, measure_node_cost,  # noqa: E402
                             measure_sampling)
from seed_table_oracle import (ActionTimes, OracleSchedule, oracle_schedule,  # noqa: E402
                               true_footprints)
from seed_table_parts import CONFIGS, TableRow, run_configuration, start_headroom  # noqa: E402
from memory_policy_numbers import SEED_MODELS  # noqa: E402

from shadowhound_llm_bench.sim.machine import start_machine  # noqa: E402
from shadowhound_llm_bench.sim.ros_load import RosLoad, start_ros_load  # noqa: E402
from shadowhound_llm_bench.sim.scenario import load_scenario  # noqa: E402

SCENARIO = "thor"
MACHINES = ("thor", "thor_cgroup")  # unified memory; memory charged to the container
SMOKE_CONFIGS = ("none", "full")
PARTS = ("table", "node", "sampling")
GIB = 1024 ** 3
# Seed's table (OLLAMA_BENCHMARK_MEMORY_MANAGEMENT.md), measured on a 128 GB Thor.
SEED_ROWS = {
    "none": ("2/5", "25 min", "98 GB (OOM)"),
    "unload": ("1/5", "27 min", "76 GB"),
    "restart_large": ("0/5", "28 min", "45 GB"),
    "full": ("0/5", "30 min", "42 GB"),
    "adaptive": ("-", "-", "-"),
}
SEED_TOTAL_S = 25 * 60  # the seed's run without management, on Thor
ADAPTIVE_MAX_MANAGEMENT_SHARE = 0.02
ADAPTIVE_MAX_ORACLE_RATIO = 1.2


def say(text: str) -> None:
    """One progress line, with the time since start."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {text}", flush=True)


STARTED = time.monotonic()


def median_row(rows: Sequence[TableRow]) -> TableRow:
    """Medians of every number over repetitions of one configuration."""
    if len(rows) == 1:
        return rows[0]
    first = rows[0]
    values: Dict[str, Any] = {}
    for name in TableRow.NUMBERS:
        numbers = [getattr(r, name) for r in rows]
        values[name] = statistics.median(numbers)
    return first.replace(**values, repetitions=len(rows))


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.3f}"


def thor_gb(n_bytes: float, scale: float) -> str:
    return f"{n_bytes / scale / 1e9:.0f}"


def machine_oracle(rows: Sequence[TableRow], scenario: Any) -> OracleSchedule:
    """Compute this machine's oracle: true footprints, the budget, the run's measured actions."""
    times = ActionTimes.median_of([d for r in rows for d in r.unload_durations_s],
                                  [d for r in rows for d in r.restart_durations_s],
                                  [d for r in rows for d in r.drop_durations_s])
    footprints = true_footprints(scenario, SEED_MODELS, int(scenario.node_parameters["num_ctx"]))
    budgets = [r.budget_bytes for r in rows if r.key == "adaptive" and r.budget_bytes] or \
        sorted(r.budget_bytes for r in rows if r.budget_bytes)
    if not budgets:
        return OracleSchedule(actions=["no model budget read: no oracle"])
    return oracle_schedule(SEED_MODELS, footprints, int(budgets[len(budgets) // 2]), times,
                           unified=scenario.memory_model == "unified")


def table_lines(rows: Sequence[TableRow], scale: float, markdown: bool,
                oracle_s: float = 0.0) -> List[str]:
    """Format the one table as plain text (markdown=False) or as a Markdown table."""
    baseline = next((r.total_s for r in rows if r.key == "none"), 0.0)
    header = ["Configuration", "Failed loads", "Models lost: physics / decision", "Total s",
              "vs none", "Mgmt s", "Oracle mgmt s", "Mgmt / oracle", "Mgmt %",
              "Peak container GiB (Thor GB)", "Peak host GiB (Thor GB)",
              "Min ROS headroom GiB (Thor GB)", "Reserve breaches", "Over budget",
              "Server refused / runner deaths / kernel OOM kills",
              "Min MemFree GiB (Thor GB)",
              "Peak machine used GiB (Thor GB)", "Driver pool at end GiB",
              "Seed: failures / time / peak"]
    body = []
    for r in rows:
        seed = SEED_ROWS.get(r.key, ("-", "-", "-"))
        body.append([
            r.label, f"{r.failed_loads:g}",
            f"{r.physics_failures:g} / {r.decision_stops:g} of {r.models}", f"{r.total_s:.1f}",
            f"{100 * (r.total_s / baseline - 1):+.0f} %" if baseline and r.key != "none" else "",
            f"{r.management_s:.2f}", f"{oracle_s:.2f}",
            f"{r.management_s / oracle_s:.2f}" if oracle_s > 0 else "-",
            f"{100 * r.management_share:.1f}",
            f"{gib(r.peak_container_bytes)} ({thor_gb(r.peak_container_bytes, scale)})",
            f"{gib(r.peak_host_used_bytes)} ({thor_gb(r.peak_host_used_bytes, scale)})",
            f"{gib(r.min_ros_headroom_bytes)} ({thor_gb(r.min_ros_headroom_bytes, scale)})",
            f"{r.reserve_breaches:g}", f"{r.over_budget_readings:g}",
            f"{r.server_refusals:g} / {r.server_runner_deaths:g} / {r.kernel_oom_kills:g}",
            f"{gib(r.min_memfree_bytes)} ({thor_gb(r.min_memfree_bytes, scale)})",
            f"{gib(r.peak_machine_used_bytes)} ({thor_gb(r.peak_machine_used_bytes, scale)})",
            gib(r.pool_end_bytes), " / ".join(seed)])
    return render_table(header, body, markdown)


def render_table(header: Sequence[str], body: Sequence[Sequence[str]],
                 markdown: bool) -> List[str]:
    """Lay out a header and rows as aligned plain text or as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return lines
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return lines


def management_miss_reason(row: TableRow, time_scale: float) -> str:
    """Why the management share is what it is, and what it would be at the seed's workload."""
    seed_wall_s = SEED_TOTAL_S * time_scale
    projected = row.management_s / (seed_wall_s + row.management_s)
    return (f"the suite here takes {row.total_s - row.management_s:.0f} s for five models, the "
            f"seed's took 25 min on Thor ({seed_wall_s:.0f} s at time x{time_scale:g}); Docker "
            "restarts and the wait for Ollama's asynchronous unloads are wall-clock and not "
            f"all compressed. The same {row.management_s:.2f} s over the seed's workload "
            f"would be {100 * projected:.1f} % (projection, not a measurement)")


def adaptive_targets(rows: Sequence[TableRow], time_scale: float,
                     oracle: Optional[OracleSchedule] = None) -> List[str]:
    """Each target for adaptive: met or not, with the numbers (and why when missed)."""
    adaptive = next((r for r in rows if r.key == "adaptive"), None)
    if adaptive is None:
        return ["adaptive was not run: no targets checked"]
    a = adaptive
    lines = []

    def verdict(ok: bool, text: str, why: str = "") -> None:
        reason = f" -- WHY: {why}" if why and not ok else ""
        lines.append(f"  [{'MET' if ok else 'MISSED'}] {text}{reason}")

    verdict(a.failed_loads == 0 and a.models_failed == 0,
            f"zero failures: {a.failed_loads:g} failed loads, {a.models_failed:g} models failed",
            a.failure_note)
    verdict(a.management_share < ADAPTIVE_MAX_MANAGEMENT_SHARE,
            f"management < {100 * ADAPTIVE_MAX_MANAGEMENT_SHARE:.0f} % of total time: "
            f"{100 * a.management_share:.2f} % ({a.management_s:.2f} s of {a.total_s:.1f} s; "
            f"{a.management_note})", management_miss_reason(a, time_scale))
    if oracle is not None:
        ratio = a.management_s / oracle.seconds if oracle.seconds > 0 else float("inf")
        verdict(ratio <= ADAPTIVE_MAX_ORACLE_RATIO,
                f"management <= {ADAPTIVE_MAX_ORACLE_RATIO:g}x the oracle's: {a.management_s:.2f}"
                f" s vs {oracle.describe()} ({ratio:.2f}x)",
                "adaptive spent more on management than the oracle's fewest actions allow")
    verdict(a.over_budget_readings == 0,
            f"peak never above the budget: {a.over_budget_readings:g} readings over, peak "
            f"{gib(a.peak_container_bytes)} GiB, tightest margin {gib(a.min_budget_margin_bytes)} "
            "GiB", "the working set passed the model budget in those readings")
    verdict(a.reserve_breaches == 0,
            f"no ROS reserve breach: {a.reserve_breaches:g} readings into the reserve, minimum "
            f"headroom left to ROS {gib(a.min_ros_headroom_bytes)} GiB",
            "host available memory fell below the unused ROS reserve")
    return lines


def write_chart(rows: Sequence[TableRow], scenario: Any, path: Path) -> None:
    """Bars: peak container / host memory (Thor GB); line: management share (%)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = scenario.memory_scale
    xs = list(range(len(rows)))
    width = 0.38
    fig, ax = plt.subplots(figsize=(9, 5.2))
    container = [r.peak_container_bytes / scale / 1e9 for r in rows]
    host = [r.peak_host_used_bytes / scale / 1e9 for r in rows]
    ax.bar([x - width / 2 for x in xs], container, width, label="peak container")
    ax.bar([x + width / 2 for x in xs], host, width, label="peak host used")
    limit_gb = scenario.container_limit_bytes / 1e9
    ax.axhline(limit_gb, color="red", linestyle="--", linewidth=1,
               label=f"container limit ({limit_gb:.0f} GB)")
    for x, r in zip(xs, rows):
        ax.text(x, 2, f"{r.failed_loads:g} failed loads\n{r.models_failed:g}/{r.models} lost",
                ha="center", va="bottom", fontsize=8, color="white",
                bbox=dict(facecolor="black", alpha=0.6, pad=2))
    ax.set_xticks(xs)
    ax.set_xticklabels([r.short or r.label for r in rows])
    ax.set_ylabel("GB on a 128 GB Thor (measured x64)")
    ax.set_ylim(0, max(host + container + [limit_gb]) * 1.15)
    share = ax.twinx()
    share.plot(xs, [100 * r.management_share for r in rows], "o-", color="black",
               label="time on management (%)")
    share.set_ylabel("time spent on management, % of total")
    share.set_ylim(0, max([100 * r.management_share for r in rows] + [1]) * 1.6)
    handles = ax.get_legend_handles_labels()
    extra = share.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper center", fontsize=8,
              ncol=4, bbox_to_anchor=(0.5, -0.14))
    ax.set_title(f"The seed's five models on `{scenario.name}` ({scenario.memory_model} memory, "
                 "1/64)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_table(args: argparse.Namespace, scenario: Any, docker_client: Any, out_dir: Path,
              ros_load: Optional[RosLoad]) -> List[str]:
    """Run the table on every machine of --scenarios, one after the other."""
    lines: List[str] = []
    for name in args.scenarios:
        machine_scenario = load_scenario(name)
        say(f"table: machine {name} ({machine_scenario.memory_model}): its memory cgroup, "
            f"GPU driver and ROS/Nav2 load ({machine_scenario.ros_load_physical_bytes / 2**20:.0f}"
            f" MiB in {len(machine_scenario.ros_nodes)} processes)")
        with start_machine(machine_scenario) as machine:
            say(f"table: machine {name}: readings in {machine.machine_dir}")
            with start_ros_load(scenario=name, machine=machine) as load:
                lines += run_machine_table(args, machine_scenario, docker_client,
                                           out_dir / name, load, machine)
    return lines


def run_machine_table(args: argparse.Namespace, scenario: Any, docker_client: Any,
                      out_dir: Path, ros_load: RosLoad, machine: Any) -> List[str]:
    """Run every configuration on one machine (a fresh container each); medians."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in CONFIGS if c.key in args.configs]
    collected: Dict[str, List[TableRow]] = {c.key: [] for c in chosen}
    headroom = start_headroom(scenario, ros_load)
    for repetition in range(1, args.repetitions + 1):
        for config in chosen:
            say(f"table: {config.label} (repetition {repetition}/{args.repetitions}): "
                "fresh container")
            row = run_configuration(
                config, scenario=scenario, docker_client=docker_client, headroom=headroom,
                results_root=out_dir / "runs", seed_recovery=args.seed_recovery,
                test_repetitions=args.test_repetitions, num_predict=args.num_predict,
                deadline_s=args.config_deadline_s, progress=say, machine=machine,
                management_costs_path=str(out_dir / "management_costs.json"))
            collected[config.key].append(row)
            say(f"table: {config.label}: {row.failed_loads} failed loads, "
                f"{row.models_failed}/{row.models} models failed, {row.total_s:.1f} s, "
                f"management {row.management_s:.2f} s")
    rows = [median_row(collected[c.key]) for c in chosen]
    scale = scenario.memory_scale
    oracle = machine_oracle(rows, scenario)
    text = table_lines(rows, scale, markdown=False, oracle_s=oracle.seconds)
    targets = adaptive_targets(rows, scenario.time_scale, oracle)
    md = [f"Seed's five models on the `{scenario.name}` simulator container "
          f"({scenario.memory_model} memory, memory x{scale:g}, time x{scenario.time_scale:g}, "
          f"no scripted faults); {args.repetitions} repetition(s), medians.", ""]
    md += table_lines(rows, scale, markdown=True, oracle_s=oracle.seconds)
    md += ["", f"Oracle (true footprints, measured action times): {oracle.describe()}"]
    memory_rows = [(r.label, r.memory) for r in rows if r.memory is not None]
    if memory_rows:
        md += ["", "Memory sources (judged against the simulator's ground truth):", ""]
        md += memory_table_lines(memory_rows, markdown=True)
    md += ["", "Adaptive targets:", ""] + [line.strip() for line in targets]
    md += ["", "Notes:", ""] + [f"- {r.label}: {r.note}" for r in rows if r.note]
    (out_dir / "seed_table.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    write_chart(rows, scenario, out_dir / "seed_table.png")
    lines = ["", f"SEED TABLE: machine `{scenario.name}` ({scenario.memory_model} memory, no "
             "scripted faults; GiB at 1/64 scale, Thor GB = x64 in parentheses)"] + text
    lines += [f"Oracle (true footprints, measured action times): {oracle.describe()}"]
    if memory_rows:
        lines += ["", "MEMORY SOURCES (wrong verdicts against the simulator's ground truth)"]
        lines += memory_table_lines(memory_rows, markdown=False)
        lines += [f"  {label}: wrong: {c.wrong_note}" for label, c in memory_rows
                  if c.wrong_note]
    lines += ["", "Adaptive targets:"] + targets
    lines += ["", "Notes:"] + [f"  {r.label}: {r.note}" for r in rows if r.note]
    lines += [f"(Markdown: {out_dir / 'seed_table.md'}, chart: {out_dir / 'seed_table.png'})"]
    return lines


def run_node(args: argparse.Namespace, scenario: Any, docker_client: Any, out_dir: Path,
             ros_load: RosLoad) -> List[str]:
    """Measure the node's CPU % and RSS at each publish rate; medians over repetitions."""
    results: Dict[float, List[NodeCost]] = {rate: [] for rate in args.rates}
    for repetition in range(1, args.repetitions + 1):
        for rate in args.rates:
            say(f"node: publishing at {rate:g} Hz during a run (repetition {repetition})")
            cost = measure_node_cost(scenario=scenario, docker_client=docker_client,
                                     rate_hz=rate, results_dir=out_dir / "node",
                                     models=args.node_models,
                                     test_repetitions=args.node_test_repetitions, progress=say)
            results[rate].append(cost)
    lines = ["", "NODE COST (llm_bench node process, psutil, during a run)"]
    for rate, costs in results.items():
        med = {name: statistics.median(getattr(c, name) for c in costs)
               for name in NodeCost.NUMBERS}
        lines.append(
            f"  {rate:4g} Hz: CPU {med['cpu_percent']:.1f} % (of one core, mean over "
            f"{med['run_s']:.0f} s run; p95 of 1 s samples {med['cpu_p95_percent']:.1f} %), "
            f"RSS median {med['rss_median_bytes'] / 2**20:.1f} MiB, peak "
            f"{med['rss_peak_bytes'] / 2**20:.1f} MiB; {med['messages']:.0f} memory messages "
            f"received ({med['message_rate_hz']:.1f} Hz); client exit {costs[-1].client_exit}")
    return lines


def run_sampling(args: argparse.Namespace, scenario: Any, docker_client: Any, out_dir: Path,
                 ros_load: Optional[RosLoad]) -> List[str]:
    """Measure p50 / p99 of one memory sample per path; medians over repetitions."""
    runs: List[SamplingLatency] = []
    for repetition in range(1, args.repetitions + 1):
        say(f"sampling: {args.cgroup_samples} cgroup and {args.api_samples} Docker API samples "
            f"(repetition {repetition})")
        runs.append(measure_sampling(scenario=scenario, docker_client=docker_client,
                                     cgroup_samples=args.cgroup_samples,
                                     api_samples=args.api_samples))
    med = {name: statistics.median(getattr(r, name) for r in runs)
           for name in SamplingLatency.NUMBERS}
    return ["", "MEMORY SAMPLE LATENCY (one ContainerSample)",
            f"  cgroup files: p50 {med['cgroup_p50_s'] * 1e3:.3f} ms, p99 "
            f"{med['cgroup_p99_s'] * 1e3:.3f} ms ({args.cgroup_samples} samples)",
            f"  Docker API:   p50 {med['api_p50_s'] * 1e3:.1f} ms, p99 "
            f"{med['api_p99_s'] * 1e3:.1f} ms ({args.api_samples} samples)"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("--part", action="append", choices=PARTS,
                        help="part to run (repeatable); default: all")
    parser.add_argument("--repetitions", type=int, default=1,
                        help="repeat each part; the table shows medians when > 1")
    parser.add_argument("--configs", nargs="+", default=[c.key for c in CONFIGS],
                        choices=[c.key for c in CONFIGS])
    parser.add_argument("--results-dir", default="",
                        help="default: results/benchmarks/<timestamp>/ in the repository")
    parser.add_argument("--test-repetitions", type=int, default=0,
                        help="measured repetitions of the suite per model (default: the "
                        "scenario's, 3)")
    parser.add_argument("--num-predict", type=int, default=512)
    parser.add_argument("--seed-recovery", action="store_true",
                        help="give the seed's four configurations the product's recovery "
                        "(restart and retry a failed load); the seed's script had none")
    parser.add_argument("--config-deadline-s", type=float, default=180.0)
    parser.add_argument("--scenarios", nargs="+", default=list(MACHINES),
                        help="machines of the table part (default: thor thor_cgroup)")
    parser.add_argument("--smoke", action="store_true",
                        help="a short check: the table only, configurations "
                        f"{' and '.join(SMOKE_CONFIGS)}, one suite repetition, 8 tokens")
    parser.add_argument("--rates", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--node-models", nargs="+", default=["phi4:14b", "deepseek-r1:7b"])
    parser.add_argument("--node-test-repetitions", type=int, default=3,
                        help="measured repetitions of the suite in the node's run")
    parser.add_argument("--cgroup-samples", type=int, default=50)
    parser.add_argument("--api-samples", type=int, default=10)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the chosen parts and print their results."""
    args = build_parser().parse_args(argv)
    if args.repetitions < 1:
        raise SystemExit("--repetitions must be at least 1")
    if args.smoke:
        args.part = args.part or ["table"]
        if args.configs == [c.key for c in CONFIGS]:
            args.configs = list(SMOKE_CONFIGS)
        args.test_repetitions = args.test_repetitions or 1
        args.num_predict = min(args.num_predict, 8)
    parts = args.part or list(PARTS)
    logging.basicConfig(level=logging.WARNING, format="           guard: %(message)s")
    os.environ.setdefault("DOCKER_HOST", "unix:///tmp/dockerd/docker.sock")
    import docker

    try:
        docker_client = docker.from_env(timeout=60)
        docker_client.ping()
    except Exception as exc:  # any engine error means the benchmark cannot run here
        print(f"seed_table: no Docker engine at {os.environ['DOCKER_HOST']}: {exc}",
              file=sys.stderr)
        return 1
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.results_dir or HERE.parent / "results" / "benchmarks" / stamp)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario(SCENARIO)
    args.test_repetitions = args.test_repetitions or int(
        scenario.node_parameters.get("repetitions", 3))
    say(f"seed_table: parts {', '.join(parts)}; results in {out_dir}")
    runners: Dict[str, Callable[..., List[str]]] = {
        "table": run_table, "node": run_node, "sampling": run_sampling}
    report: List[str] = []
    ros_load: Optional[RosLoad] = None
    try:
        if "node" in parts:
            say(f"standing up the ROS/Nav2 load of {scenario.name} "
                f"({scenario.ros_load_physical_bytes / 2**20:.0f} MiB in "
                f"{len(scenario.ros_nodes)} processes)")
            ros_load = start_ros_load(scenario=SCENARIO)
        for part in PARTS:
            if part in parts:
                report += runners[part](args, scenario, docker_client, out_dir, ros_load)
    finally:
        if ros_load is not None:
            ros_load.stop()
        docker_client.close()
    report.append(f"\nwhole script: {time.monotonic() - STARTED:.0f} s")
    for line in report:
        print(line, flush=True)
    (out_dir / "seed_table_output.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
