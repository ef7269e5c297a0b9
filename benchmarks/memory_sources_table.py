"""
The seed's five models on both simulated machines, with the memory-source columns.

Run (root, cgroup v1, for the simulated machines' memory cgroups):

    source scripts/env.sh && python benchmarks/memory_sources_table.py

Each configuration runs on a fresh simulated machine (sim/machine.py): `thor` (unified memory,
device memory held by the GPU driver outside the Ollama cgroup) and `thor_cgroup` (memory
charged to the Ollama cgroup), no scripted faults. Ollama is the local simulator in the
machine's `ollama` cgroup (restarted as a process group); the product reads the machine's
meminfo, nvidia-smi stand-in and drop_caches as it reads a robot's, and calibrates its memory
sources on each machine's first run. The scenario's ROS/Nav2 load stands in the machine.
Prints the seed table and the memory-source table per machine; results in
results/benchmarks/memory-sources-<timestamp>/.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from memory_columns import memory_columns, memory_source_settings_for  # noqa: E402
from memory_policy_numbers import SEED_MODELS  # noqa: E402
from seed_table import table_lines  # noqa: E402
from seed_table_parts import CONFIGS, TableRow, _row, start_headroom  # noqa: E402
from memory_columns import memory_table_lines  # noqa: E402

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient  # noqa: E402
from shadowhound_llm_bench.adapters.process_container import ProcessContainer  # noqa: E402
from shadowhound_llm_bench.core.run_options import RunOptions  # noqa: E402
from shadowhound_llm_bench.core.suite import load_suite  # noqa: E402
from shadowhound_llm_bench.engine.memory_guard import build_memory_guard  # noqa: E402
from shadowhound_llm_bench.engine.runner import BenchmarkRunner  # noqa: E402
from shadowhound_llm_bench.sim.launcher import _sim_command, free_port  # noqa: E402
from shadowhound_llm_bench.sim.machine import can_create_cgroups, start_machine  # noqa: E402
from shadowhound_llm_bench.sim.ros_load import start_ros_load  # noqa: E402
from shadowhound_llm_bench.sim.scenario import load_scenario  # noqa: E402

MACHINES = ("thor", "thor_cgroup")
STARTED = time.monotonic()


def say(text: str) -> None:
    """One progress line, with the time since start."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {text}", flush=True)


def run_one(config, scenario, *, out_dir: Path, test_repetitions: int, num_predict: int,
            deadline_s: float) -> TableRow:
    """One configuration on a fresh machine with its ROS load; the Ollama simulator in it."""
    params = scenario.node_parameters
    machine = start_machine(scenario)
    ros_load = backend = guard = client = timer = None
    try:
        ros_load = start_ros_load(scenario=scenario.name, machine=machine)
        headroom = start_headroom(scenario, ros_load)
        port = free_port()
        cgroup = machine.sub_cgroup("ollama", scenario.container_limit_physical_bytes)

        class Sim:  # what memory_source_settings_for reads
            pass
        sim = Sim()
        sim.machine = machine
        argv = _sim_command(sys.executable, scenario=scenario.name, host="127.0.0.1",
                            port=port, extra_faults=None, limit_mode="cgroup", machine=machine,
                            join_cgroup=cgroup)
        backend = ProcessContainer(name=f"ollama-{scenario.name}", argv=argv,
                                   ollama_base_url=f"http://127.0.0.1:{port}",
                                   cwd=str(HERE.parent), memory_cgroup_dir=cgroup,
                                   log_path=str(out_dir / f"sim-{scenario.name}-{config.key}.log"))
        backend.start(deadline_s=30.0)
        client = OllamaClient(base_url=backend.ollama_base_url, request_timeout_s=60)
        settings = config.settings(scenario, seed_recovery=False)
        guard = build_memory_guard(
            settings=settings, client=client, backend=backend, headroom=headroom,
            memory_sources=memory_source_settings_for(sim),
            footprint_cache_path=str(out_dir / f"cache-{scenario.name}-{config.key}"
                                     / "footprints.json"))
        options = RunOptions(num_ctx=int(params["num_ctx"]), num_predict=num_predict,
                             repetitions=test_repetitions, warmup=False, pull_missing=False,
                             request_deadline_s=60, load_deadline_s=60)
        runner = BenchmarkRunner(client=client, guard=guard, options=options,
                                 suite=load_suite(str(params.get("suite", "robot_mission"))),
                                 results_root=out_dir / "runs",
                                 run_name=f"{scenario.name}-{config.key}".replace("_", "-"),
                                 preset=settings.preset)
        timer = threading.Timer(deadline_s, runner.cancel.set)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        outcome = runner.run(SEED_MODELS)
        total_s = time.monotonic() - started
        return _row(config, outcome, guard, total_s).replace(
            memory=memory_columns(guard, scenario, num_ctx=int(params["num_ctx"])))
    finally:
        if timer is not None:
            timer.cancel()
        if guard is not None:
            guard.close()
        if client is not None:
            client.close()
        if backend is not None:
            backend.close()
        if ros_load is not None:
            ros_load.stop()
        machine.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the configurations on both machines and print both tables per machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--machines", nargs="+", default=list(MACHINES), choices=MACHINES)
    parser.add_argument("--configs", nargs="+", default=["none", "full", "adaptive"],
                        choices=[c.key for c in CONFIGS])
    parser.add_argument("--test-repetitions", type=int, default=1)
    parser.add_argument("--num-predict", type=int, default=128)
    parser.add_argument("--config-deadline-s", type=float, default=240.0)
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    if not can_create_cgroups():
        print("memory_sources_table: needs root and cgroup v1 for the simulated machines",
              file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.ERROR, format="           %(name)s: %(message)s")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.results_dir or HERE.parent / "results" / "benchmarks"
                   / f"memory-sources-{stamp}")
    out_dir.mkdir(parents=True, exist_ok=True)
    report: List[str] = []
    for name in args.machines:
        scenario = load_scenario(name)
        rows = []
        for config in [c for c in CONFIGS if c.key in args.configs]:
            say(f"{name}: {config.label} on a fresh machine")
            row = run_one(config, scenario, out_dir=out_dir,
                          test_repetitions=args.test_repetitions, num_predict=args.num_predict,
                          deadline_s=args.config_deadline_s)
            say(f"{name}: {config.label}: {row.failed_loads:g} failed loads, "
                f"{row.models_failed:g}/{row.models} models failed, {row.total_s:.1f} s")
            rows.append(row)
        report += ["", f"MACHINE {name} ({scenario.memory_model}, memory x"
                   f"{scenario.memory_scale:g}, time x{scenario.time_scale:g}, no faults)"]
        report += table_lines(rows, scenario.memory_scale, markdown=False)
        report += [""] + memory_table_lines([(r.label, r.memory) for r in rows],
                                            markdown=False)
        report += [f"  {r.label}: {r.note}" for r in rows if r.note]
        report += [f"  {r.label}: wrong verdicts: {r.memory.wrong_note}" for r in rows
                   if r.memory and r.memory.wrong_note]
    report.append(f"\nwhole script: {time.monotonic() - STARTED:.0f} s")
    for line in report:
        print(line, flush=True)
    (out_dir / "memory_sources_table.txt").write_text("\n".join(report) + "\n",
                                                      encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
