"""
Memory policy numbers on the thor simulator container: sampling, restart time, footprints.

Run (with DOCKER_HOST set): .venv/bin/python benchmarks/memory_policy_numbers.py
Prints medians (and p99 of sampling) for one sample through the cgroup files and through the
Docker stats API, the time of a container restart until Ollama answers, and the predicted versus
measured footprint of each of the seed's five models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from shadowhound_llm_bench.adapters.docker_container import DockerContainer  # noqa: E402
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient  # noqa: E402
from shadowhound_llm_bench.core.memory.footprint import (  # noqa: E402
    FootprintPredictor, metadata_from_ollama, prediction_error)
from shadowhound_llm_bench.core.ollama.model_metadata import find_tag  # noqa: E402
from shadowhound_llm_bench.sim.launcher import start_container_simulator  # noqa: E402
from shadowhound_llm_bench.sim.scenario import load_scenario  # noqa: E402

SEED_MODELS = ["phi4:14b", "qwen2.5-coder:32b", "qwq:32b", "llama3.3:70b", "deepseek-r1:7b"]


def timed(call: Callable[[], object], n: int) -> List[float]:
    """Seconds of n calls."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def p99(values: List[float]) -> float:
    """99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def main() -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cgroup-samples", type=int, default=500)
    parser.add_argument("--api-samples", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    scenario = load_scenario("thor_faults")
    client = docker.from_env(timeout=60)
    name = f"policy-bench-{uuid.uuid4().hex[:8]}"
    sim = start_container_simulator(docker_client=client, name=name, scenario=scenario.name,
                                    port=0)
    url = f"http://127.0.0.1:{sim.port}"
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=client)
    try:
        cgroup = timed(backend.read_cgroup_sample, args.cgroup_samples)
        api = timed(backend.read_api_sample, args.api_samples)
        print(f"sample via cgroup files: median {statistics.median(cgroup) * 1e3:.3f} ms, "
              f"p99 {p99(cgroup) * 1e3:.3f} ms ({len(cgroup)} samples)")
        print(f"sample via Docker API:   median {statistics.median(api) * 1e3:.1f} ms, "
              f"p99 {p99(api) * 1e3:.1f} ms ({len(api)} samples)")
        restarts = [backend.restart(deadline_s=30) for _ in range(args.restarts)]
        print(f"restart until /api/version answers: median {statistics.median(restarts):.2f} s "
              f"(min {min(restarts):.2f}, max {max(restarts):.2f}, n={len(restarts)})")

        ollama = OllamaClient(base_url=url, request_timeout_s=60)
        predictor = FootprintPredictor(num_ctx=scenario.default_num_ctx,
                                       memory_scale=scenario.memory_scale)
        tags = ollama.tags()
        print(f"footprints at num_ctx {scenario.default_num_ctx}, memory scale "
              f"{scenario.memory_scale:g} (bytes on this machine):")
        for model in SEED_MODELS:
            backend.restart(deadline_s=30)
            before = backend.sample().working_set_bytes
            ollama.load(model, keep_alive="5m",
                        options={"num_ctx": scenario.default_num_ctx}, deadline_s=60)
            measured = backend.sample().working_set_bytes - before
            by_metadata = predictor.predict(
                model, metadata=metadata_from_ollama(find_tag(tags, model), ollama.show(model)))
            by_name = predictor.predict(model)
            print(f"  {model:<20} measured {measured / 1e6:7.1f} MB  "
                  f"metadata {by_metadata.footprint_bytes / 1e6:7.1f} MB "
                  f"({prediction_error(by_metadata.footprint_bytes, measured) * 100:+5.1f} %)  "
                  f"name {by_name.footprint_bytes / 1e6:7.1f} MB "
                  f"({prediction_error(by_name.footprint_bytes, measured) * 100:+5.1f} %)")
            ollama.unload(model)
    finally:
        backend.close()
        sim.remove()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
