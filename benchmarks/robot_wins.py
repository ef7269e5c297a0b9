"""
The robot wins in real time: Nav2 grows during a load, a stream, between models; a referee judges.

Run: .venv/bin/python benchmarks/robot_wins.py [--repetitions 10] [--smoke]
(with DOCKER_HOST pointing at a Docker engine; root for the machines' memory cgroups).

Parts:
- growth (robot_wins_growth.py), on `thor` (unified memory) and `thor_cgroup`: the scenario's
  ROS load and one growing Nav2 process beside the simulator's container, the product's guard as
  on the robot. The referee (benchmarks/referee, its own process, importing nothing of the
  product) samples the machine cgroup, the driver's pool and the runners at 20 Hz; the clock runs
  from the sample where the truth crosses the reserve to the first sample back above it;
  "memory back" runs from the crossing to the models' memory (device pages, the driver's pool,
  the container's anonymous pages) being given back.
- cancel (robot_wins_cancel.py): a guarded run canceled during a load and a stream, in-process
  and through the real node's action.
- killed (robot_wins_killed.py): the node SIGKILLed with a model loaded, then Nav2 grows until
  the machine is out of memory; who did the kernel kill.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from robot_wins_growth import MOMENTS, PERIOD_S, MachineResult, run_machine  # noqa: E402

MIB = 1 << 20
MACHINES = ("thor", "thor_cgroup")


def percentile(values: List[float], q: float) -> float:
    """Return the nearest-rank percentile q of values (no product helper in the verdicts)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _stats(values: List[Optional[float]]) -> str:
    known = [v for v in values if v is not None and v == v]  # None or NaN: never came back
    if not known:
        return "n/a" + (f" ({len(values)} never)" if values else "")
    missing = len(values) - len(known)
    return (f"{statistics.median(known):.3f} / {percentile(known, 99):.3f}"
            + (f" ({missing} never)" if missing else ""))


def growth_table(results: List[MachineResult]) -> str:
    """Per machine and moment: referee-measured reaction, memory back, headroom vs reserve."""
    lines = ["| Machine | Nav2 grows during | n | crossed | under reserve s p50 / p99 | "
             "memory back s p50 / p99 | min ROS headroom vs reserve MiB | reserve MiB | "
             "drops | OOM kills | kept |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        for moment in MOMENTS:
            episodes = [e for e in result.episodes if e.moment == moment]
            if not episodes:
                continue
            lines.append(
                f"| {result.scenario} | {moment} | {len(episodes)} | "
                f"{sum(e.crossed for e in episodes)} | "
                f"{_stats([e.under_s for e in episodes])} | "
                f"{_stats([e.memory_back_s for e in episodes])} | "
                f"{min(e.min_headroom_bytes for e in episodes) / MIB:+.1f} | "
                f"{result.reserve_bytes / MIB:.0f} | {sum(e.drops for e in episodes)} | "
                f"{sum(e.oom_kills for e in episodes)} | "
                f"{sum(e.kept for e in episodes)}/{len(episodes)} |")
    notes = [f"{r.scenario}: {n}" for r in results for n in r.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def cancel_table(cancels: Dict[str, List[float]]) -> str:
    """Cancel to result, per phase."""
    lines = ["| Cancel during | n | cancel to result s p50 / p99 | max s |", "|---|---|---|---|"]
    for phase, values in cancels.items():
        known = [v for v in values if v == v]
        lines.append(f"| {phase} | {len(values)} | {_stats(values)} | "
                     f"{max(known, default=float('nan')):.3f} |")
    return "\n".join(lines)


def killed_table(kills: Dict[str, List[Dict[str, Any]]]) -> str:
    """Who the kernel killed after the node was SIGKILLed."""
    lines = ["| Node SIGKILLed, Nav2 grows | n | Nav2 survived | runner killed | "
             "runner oom_score_adj | Nav2 oom_score_adj | kernel OOM kills |",
             "|---|---|---|---|---|---|---|"]
    for label, outcomes in kills.items():
        if not outcomes:
            continue
        lines.append(
            f"| {label} | {len(outcomes)} | {sum(o['nav2_survived'] for o in outcomes)} | "
            f"{sum(o['runner_killed'] for o in outcomes)} | "
            f"{sorted({a for o in outcomes for a in o['runner_adj'] if a is not None})} | "
            f"{sorted({o['nav2_adj'] for o in outcomes})} | "
            f"{sum(o['oom_kills'] for o in outcomes)} |")
    refused = {r for o in kills.get("backstop on", []) for r in o["refused"]}
    if refused:
        lines += ["", "Refused: " + "; ".join(sorted(refused))]
    return "\n".join(lines)


def main() -> int:
    """Run the parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--smoke", action="store_true",
                        help="one repetition of a growth during a load, on both machines")
    parser.add_argument("--parts", default="growth,cancel,action,killed")
    parser.add_argument("--machines", default=",".join(MACHINES))
    parser.add_argument("--keep-samples", default="", help="folder for the referee's files")
    parser.add_argument("--drop-caches", default="auto", choices=("auto", "never"),
                        help="the product's drop_caches setting (never: the unload alone)")
    args = parser.parse_args()
    repetitions = 1 if args.smoke else args.repetitions
    parts = {"growth"} if args.smoke else set(args.parts.split(","))
    moments = ("load",) if args.smoke else MOMENTS
    started = time.monotonic()
    growth: List[MachineResult] = []
    cancels: Dict[str, List[float]] = {}
    kills: Dict[str, List[Dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="robot-wins-") as tmp:
        folder = Path(args.keep_samples or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "growth" in parts:
            for machine in args.machines.split(","):
                growth.append(run_machine(machine, repetitions, folder, moments,
                                          args.drop_caches))
        if "cancel" in parts or "action" in parts:
            from robot_wins_cancel import action_cancel_part, cancel_part
            if "cancel" in parts:
                cancels = cancel_part(repetitions, folder)
            if "action" in parts:
                for phase, values in action_cancel_part(repetitions, folder).items():
                    cancels[f"{phase}, goal cancel through the node"] = values
        if "killed" in parts:
            from robot_wins_killed import container_node_killed_part, node_killed_part
            kills["backstop on"] = node_killed_part(repetitions, backstop=True)
            for scenario, label in (("thor_cgroup", "container charged"),
                                    ("thor", "unified memory")):
                kills[f"backstop on, {label}"] = container_node_killed_part(repetitions,
                                                                            scenario)
            kills["backstop off"] = node_killed_part(max(1, repetitions // 3), backstop=False)
    print(f"\nrobot_wins: {repetitions} repetition(s), referee sampling every {PERIOD_S} s, "
          f"{time.monotonic() - started:.0f} s\n")
    for table in (growth_table(growth) if growth else "", cancel_table(cancels) if cancels
                  else "", killed_table(kills) if kills else ""):
        if table:
            print(table + "\n")
    never_back = sum(e.memory_back_s is None for r in growth for e in r.episodes)
    return 1 if never_back else 0


if __name__ == "__main__":
    sys.exit(main())
