"""
Platform numbers: sample cost, node CPU with sampling on and off, J/token against the truth.

The cost of one power/temperature sample, the node's CPU with platform sampling on and off, and
measured J/token against the simulator's true energy for three models.

1. sample: reads of the sysfs sensor set of the simulator's fake Thor tree (INA238 + INA3221
   rails, 5 thermal zones, GPU devfreq), p50 / p99 in ms. Target: p50 < 0.5 ms.
2. node: the llm_bench node (process backend running the small scenario), idle, CPU % of one
   core over a window with platform.enabled true, then false (same parameters otherwise).
3. energy: the simulator writes a fake Thor whose power follows the simulated work and the exact
   energy it drew per model; the BenchmarkRunner with the platform monitor (default 20 Hz)
   measures J/token = (prefill + decode energy) / generated tokens. Target: within 5 %.

Usage: python benchmarks/platform_numbers.py [--part sample|node|energy|all] [--samples 2000]
       [--node-window-s 20] [--repetitions 3]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient  # noqa: E402
from shadowhound_llm_bench.adapters.platform_sensors import open_sensors  # noqa: E402
from shadowhound_llm_bench.common.process_group import (  # noqa: E402
    start_process_group, stop_process_group, wait_for_text,
)
from shadowhound_llm_bench.core.settings.ros_args import parameter_args  # noqa: E402
from shadowhound_llm_bench.core.settings.run_options import RunOptions  # noqa: E402
from shadowhound_llm_bench.core.runs.suite import load_suite  # noqa: E402
from shadowhound_llm_bench.engine.platform_monitor import (  # noqa: E402
    PlatformMonitor, PlatformSettings,
)
from shadowhound_llm_bench.engine.runner import BenchmarkRunner  # noqa: E402
from shadowhound_llm_bench.sim.platform_sysfs import FakeThor  # noqa: E402

ENERGY_MODELS = ["deepseek-r1:7b", "llama3.1:8b", "phi4:14b"]
READY_PREFIX = "ollama_sim listening on "
NODE_READY = "ready: action"


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def part_sample(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        machine = FakeThor(os.path.join(tmp, "thor"), time_scale=1 / 8)
        # Its files stay; its thermal thread (in this process) would compete for the GIL.
        machine.close()
        try:
            sensors = open_sensors(machine.root, hot_c=85.0)
            for _ in range(50):  # warm the page cache and the interpreter
                sensors.read("MAXN")
            times_ms, cpu_ms = [], []
            for _ in range(count):
                started, cpu_started = time.perf_counter(), time.thread_time()
                sensors.read("MAXN")
                times_ms.append((time.perf_counter() - started) * 1000.0)
                cpu_ms.append((time.thread_time() - cpu_started) * 1000.0)
        finally:
            sensors.close()
    # Wall time includes waiting for a core on a shared machine; thread CPU time does not.
    print(f"one platform sample (sysfs, fake Thor tree, {count} samples): wall p50 "
          f"{statistics.median(times_ms):.3f} ms, p99 {_percentile(times_ms, 99):.3f} ms; "
          f"CPU p50 {statistics.median(cpu_ms):.3f} ms, p99 {_percentile(cpu_ms, 99):.3f} ms "
          f"(target < 0.5 ms); at 20 Hz: {statistics.mean(cpu_ms) * 20 / 10:.3f} % of one core")


def _node_cpu(enabled: bool, window_s: float, root: str) -> float:
    port = _free_port()
    params = {
        "simulation.memory_scale": 0.125, "simulation.total_gib": 1.0,
        "simulation.system_reserve_gib": 0.125, "reserve.fixed_gib": 0.03125,
        "policy.safety_buffer_gib": 0.015625, "container.backend": "process",
        "container.command": [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario",
                              "small", "--port", str(port), "--quiet", "--platform-root", root],
        "ollama_host": f"http://127.0.0.1:{port}",
        "results_dir": os.path.join(root, "results"),
        "platform.enabled": enabled, "platform.sysfs_root": root,
    }
    argv = [sys.executable, "-m", "shadowhound_llm_bench.ros.node", "--ros-args"]
    for name, value in params.items():
        argv += parameter_args(name, value)
    log_path = Path(root) / f"node-{int(enabled)}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               ROS_DOMAIN_ID=str((45 + int(os.environ.get("SHB_TEST_DOMAIN_SHIFT", "0")))
                                 % 232),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    with open(log_path, "wb") as log:
        process = start_process_group(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                                      env=env)
    try:
        wait_for_text(log_path, NODE_READY, process, timeout_s=60.0)
        node = psutil.Process(process.pid)
        time.sleep(2.0)  # start-up work done
        before = node.cpu_times()
        started = time.monotonic()
        time.sleep(window_s)
        after = node.cpu_times()
        elapsed = time.monotonic() - started
        return 100.0 * ((after.user + after.system) - (before.user + before.system)) / elapsed
    finally:
        stop_process_group(process, first_signal=signal.SIGINT, grace_s=15.0)


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def part_node(window_s: float) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for enabled in (True, False):
            root = os.path.join(tmp, f"thor-{int(enabled)}")
            os.makedirs(root)
            results[enabled] = _node_cpu(enabled, window_s, root)
    print(f"node CPU, idle, {window_s:g} s window (% of one core): platform sampling on "
          f"{results[True]:.2f} %, off {results[False]:.2f} %, difference "
          f"{results[True] - results[False]:+.2f} % (20 Hz samples, the platform topic at "
          "the default publish_rate_hz of 2 Hz)")


class _Sim:
    def __init__(self, root: str, scenario: str) -> None:
        argv = [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", scenario,
                "--port", "0", "--quiet", "--platform-root", root]
        self.process = start_process_group(argv, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
        line = self.process.stdout.readline()
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = line[len(READY_PREFIX):].split()[0]

    def stop(self) -> None:
        stop_process_group(self.process, first_signal=signal.SIGTERM, grace_s=10.0)
        self.process.stdout.close()


def _thor_scenario(tmp: str, time_scale: str) -> str:
    """Write the thor scenario at another time scale (1: the real machine's durations)."""
    text = (REPO / "config" / "scenarios" / "thor.yaml").read_text()
    lines = [f"time_scale: {time_scale}" if line.startswith("time_scale:") else line
             for line in text.splitlines()]
    path = os.path.join(tmp, f"thor-time-{time_scale.replace('/', '-')}.yaml")
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def part_energy(repetitions: int, time_scale: str, sample_hz: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "thor")
        sim = _Sim(root, _thor_scenario(tmp, time_scale))
        monitor = PlatformMonitor(PlatformSettings(sysfs_root=root, sample_hz=sample_hz))
        try:
            with OllamaClient(base_url=sim.url) as client:
                runner = BenchmarkRunner(
                    client=client, guard=None,
                    options=RunOptions(repetitions=repetitions, warmup=False, num_predict=256),
                    suite=load_suite("robot_mission"), results_root=os.path.join(tmp, "res"),
                    platform=monitor)
                outcome = runner.run(ENERGY_MODELS)
        finally:
            monitor.close()
            sim.stop()
        truth = json.loads(Path(root, "var/lib/ollama_sim/energy_ground_truth.json").read_text())
        print(f"J/token vs the simulator's true energy (thor scenario, time x{time_scale}, "
              f"{repetitions} repetitions x 3 tasks, platform monitor at "
              f"{monitor.settings.sample_hz:g} Hz; run {outcome.status}):")
        # "true" is the machine's energy while the model's requests were served, as a client
        # sees a request; "phases only" leaves out the server's own per-request overhead.
        print(f"  {'model':<16} {'tokens':>7} {'measured J/tok':>15} {'true J/tok':>11} "
              f"{'error %':>8} {'phases only':>12} {'error %':>8} {'decode W':>9}")
        errors = []
        for model in outcome.summary.models:
            entry = truth["models"][model.model]
            tokens = entry["generated_tokens"]
            true_jpt = entry["served"]["energy_j"] / tokens
            phases_jpt = (entry["prefill"]["energy_j"] + entry["decode"]["energy_j"]) / tokens
            measured = (model.energy or {}).get("j_per_token")
            nan = float("nan")
            error = nan if measured is None else 100.0 * (measured - true_jpt) / true_jpt
            phases_error = nan if measured is None else \
                100.0 * (measured - phases_jpt) / phases_jpt
            errors.append(abs(error) if measured is not None else float("inf"))
            decode_w = ((model.energy or {}).get("phases") or {}).get("decode") or {}
            print(f"  {model.model:<16} {tokens:>7} "
                  f"{measured if measured is not None else nan:>15.4f} {true_jpt:>11.4f} "
                  f"{error:>+8.2f} {phases_jpt:>12.4f} {phases_error:>+8.2f} "
                  f"{decode_w.get('mean_w', nan):>9.1f}")
        print(f"  largest error {max(errors):.2f} % against the true J/token (target within 5 %)")
        print("  energy section of the run's summary.md:")
        markdown = outcome.reports.markdown.read_text()
        section = markdown.split("## Energy and temperature", 1)[1].split("\n## ", 1)[0]
        for line in ("## Energy and temperature" + section).rstrip().splitlines():
            print("    " + line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="all", choices=["sample", "node", "energy", "all"])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--node-window-s", type=float, default=20.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--time-scale", default="1",
                        help="the thor scenario's time scale for the energy part (1: real "
                        "durations; 1/8: the demo's)")
    parser.add_argument("--sample-hz", type=float, default=20.0,
                        help="platform samples per second in the energy part")
    args = parser.parse_args()
    if args.part in ("sample", "all"):
        part_sample(args.samples)
    if args.part in ("energy", "all"):
        part_energy(args.repetitions, args.time_scale, args.sample_hz)
    if args.part in ("node", "all"):
        part_node(args.node_window_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
