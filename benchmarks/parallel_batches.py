"""
Parallel small-model testing: the same models one after another and side by side.

Run: .venv/bin/python benchmarks/parallel_batches.py [--rounds 3] [--repetitions 5]
Starts the simulator (`small` scenario) as a local process with the memory guard of the default
preset, runs the same small models sequentially and as one batch (alternating, so both see the
same machine), and prints medians of the whole run's wall time, of the test phase (first test
start to last test end) and of the decode speed each model measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient  # noqa: E402
from shadowhound_llm_bench.adapters.process_container import ProcessContainer  # noqa: E402
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings  # noqa: E402
from shadowhound_llm_bench.core.settings.run_options import RunOptions  # noqa: E402
from shadowhound_llm_bench.core.runs.suite import load_suite  # noqa: E402
from shadowhound_llm_bench.core.units import MIB  # noqa: E402
from shadowhound_llm_bench.engine.guard_building import build_memory_guard  # noqa: E402
from shadowhound_llm_bench.engine.runner import BenchmarkRunner  # noqa: E402
from shadowhound_llm_bench.reports.jsonl_log import read_records  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = ["smollm2:135m", "qwen2.5:0.5b"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def one_run(backend: ProcessContainer, url: str, results: Path, *, parallel: bool,
            repetitions: int) -> Dict[str, float]:
    """Run MODELS once; return wall, test-phase seconds and each model's median decode speed."""
    client = OllamaClient(base_url=url)
    settings = preset_settings("default", memory_scale=1 / 8, num_ctx=4096,
                               sample_period_s=0.1, safety_buffer_bytes=16 * MIB,
                               parallel_small_models=parallel)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=1 / 8,
                               footprint_cache_path=str(results / "footprints.json"))
    try:
        runner = BenchmarkRunner(client=client, guard=guard,
                                 options=RunOptions(repetitions=repetitions),
                                 suite=load_suite("robot_mission"), results_root=results,
                                 run_name="par" if parallel else "seq")
        started = time.perf_counter()
        outcome = runner.run(MODELS)
        wall = time.perf_counter() - started
    finally:
        guard.close()
        client.close()
    if outcome.status != "ok" or outcome.reports is None or outcome.summary is None:
        raise RuntimeError(f"run {outcome.status}: {outcome.message}")
    records, _ = read_records(outcome.reports.jsonl_log)
    tests = [r for r in records if r["type"] == "test"]
    row = {"wall_s": wall,
           "tests_s": max(_epoch(r["stamp"]) for r in tests)
           - min(_epoch(r["started"]) for r in tests)}
    for model in outcome.summary.models:
        row[f"decode {model.model}"] = model.median("decode_tokens_per_s") or 0.0
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ProcessContainer(
        name="bench-parallel-sim", ollama_base_url=url, cwd=str(REPO),
        argv=[sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", "small",
              "--port", str(port), "--quiet"])
    backend.start(deadline_s=30)
    backend.set_memory_limit(224 * MIB)
    rows: Dict[str, List[Dict[str, float]]] = {"sequential": [], "side by side": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
            for _ in range(args.rounds):
                for label, parallel in (("sequential", False), ("side by side", True)):
                    rows[label].append(one_run(backend, url, Path(tmp), parallel=parallel,
                                               repetitions=args.repetitions))
    finally:
        backend.close()
    print(f"{', '.join(MODELS)}; {args.repetitions} repetitions x 3 tasks + warm-up each; "
          f"medians of {args.rounds} rounds (small scenario, time scale 0.1)")
    for label, runs in rows.items():
        keys = runs[0].keys()
        print(f"  {label:<13} " + ", ".join(
            f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in keys))
    seq, par = (statistics.median(r["tests_s"] for r in rows[k]) for k in rows)
    seq_wall, par_wall = (statistics.median(r["wall_s"] for r in rows[k]) for k in rows)
    print(f"  side by side / sequential: test phase {par / seq:.2f}, whole run "
          f"{par_wall / seq_wall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
