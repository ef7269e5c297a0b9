"""Node cost and sampling latency behind benchmarks/seed_table.py (parts `node`, `sampling`)."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import psutil

from memory_policy_numbers import p99, timed

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.common.process_group import (start_process_group, stop_process_group,
                                                        wait_for_text)
from shadowhound_llm_bench.core.settings.ros_args import parameter_args
from shadowhound_llm_bench.sim.launcher import start_container_simulator

from seed_table_parts import BENCH_DOMAIN_ID, CONTAINER_PREFIX, REPO, Progress


# ---------------------------------------------------------------------------- sampling latency
@dataclass(frozen=True)
class SamplingLatency:
    """Seconds of one memory sample through each path."""

    NUMBERS: ClassVar[Tuple[str, ...]] = ("cgroup_p50_s", "cgroup_p99_s", "api_p50_s",
                                          "api_p99_s")
    cgroup_p50_s: float
    cgroup_p99_s: float
    api_p50_s: float
    api_p99_s: float


def measure_sampling(*, scenario: Any, docker_client: Any, cgroup_samples: int,
                     api_samples: int) -> SamplingLatency:
    """Time DockerContainer's cgroup path and Docker stats path on a thor container."""
    name = f"{CONTAINER_PREFIX}-sampling-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(docker_client=docker_client, name=name,
                                    scenario=scenario.name, port=0)
    backend = None
    try:
        backend = DockerContainer(name=name, ollama_base_url=sim.base_url,
                                  docker_client=docker_client)
        cgroup = timed(backend.read_cgroup_sample, cgroup_samples)
        api = timed(backend.read_api_sample, api_samples)
        return SamplingLatency(statistics.median(cgroup), p99(cgroup), statistics.median(api),
                               p99(api))
    finally:
        if backend is not None:
            backend.close()
        sim.remove()


# ---------------------------------------------------------------------------- node cost
@dataclass(frozen=True)
class NodeCost:
    """The node process's CPU and memory while it publishes at one rate during a run."""

    NUMBERS: ClassVar[Tuple[str, ...]] = ("cpu_percent", "cpu_p95_percent", "rss_median_bytes",
                                          "rss_peak_bytes", "run_s", "messages",
                                          "message_rate_hz")
    rate_hz: float
    cpu_percent: float
    cpu_p95_percent: float
    rss_median_bytes: float
    rss_peak_bytes: float
    run_s: float
    messages: float
    message_rate_hz: float
    client_exit: int


def _node_argv(scenario: Any, *, container: str, port: int, rate_hz: float,
               results_dir: Path, models: Sequence[str]) -> List[str]:
    from shadowhound_llm_bench.demo import _node_parameters, _raw_node_parameters

    params = _node_parameters(_raw_node_parameters(), backend="docker", port=port,
                              results_dir=results_dir, preset="default", repetitions=1)
    params.update({"container.name": container, "publish_rate_hz": float(rate_hz),
                   "sample_period_s": min(0.5, 1.0 / rate_hz),
                   "benchmark.models": list(models), "benchmark.num_predict": 64,
                   "benchmark.pull_missing": False})
    argv = [sys.executable, "-m", "shadowhound_llm_bench.ros.node", "--ros-args"]
    for key, value in params.items():
        argv += parameter_args(key, value)
    return argv


def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["ROS_DOMAIN_ID"] = BENCH_DOMAIN_ID
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


def _start(argv: List[str], **kwargs: Any) -> subprocess.Popen:
    return start_process_group(argv, cwd=str(REPO), env=_child_env(), **kwargs)


def _stop(process: Optional[subprocess.Popen], timeout_s: float = 10.0) -> None:
    """SIGINT, then SIGKILL to the process group; never leaves it running."""
    stop_process_group(process, first_signal=signal.SIGINT, grace_s=timeout_s)


def _count_messages(stop: threading.Event, counter: List[int], ready: threading.Event) -> None:
    """Count ~/container_memory messages in a child rclpy context (its own process state)."""
    from shadowhound_llm_bench.ros.interfaces_import import import_interfaces, import_rclpy
    from shadowhound_llm_bench.ros.memory_publisher import container_memory_qos

    rclpy = import_rclpy()
    _, container_memory, _ = import_interfaces()
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(BENCH_DOMAIN_ID))
    node = rclpy.create_node("seed_table_listener", context=context)
    node.create_subscription(container_memory, "/llm_bench/container_memory",
                             lambda _msg: counter.__setitem__(0, counter[0] + 1),
                             container_memory_qos())
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    ready.set()
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


def measure_node_cost(*, scenario: Any, docker_client: Any, rate_hz: float, results_dir: Path,
                      models: Sequence[str], test_repetitions: int, progress: Progress,
                      run_deadline_s: float = 120.0) -> NodeCost:
    """Start the node against a fresh thor container, send a goal, sample the node's process."""
    name = f"{CONTAINER_PREFIX}-node-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(docker_client=docker_client, name=name,
                                    scenario=scenario.name, port=0)
    results_dir.mkdir(parents=True, exist_ok=True)
    node = client = None
    stop_listener = threading.Event()
    listener: Optional[threading.Thread] = None
    try:
        log_path = results_dir / f"node_{rate_hz:g}hz.log"
        with open(log_path, "wb") as log:
            node = _start(_node_argv(scenario, container=name, port=sim.port, rate_hz=rate_hz,
                                     results_dir=results_dir, models=models),
                          stdout=log, stderr=subprocess.STDOUT)
        wait_for_text(log_path, "ready: action", node, timeout_s=60.0, what="the node")
        counter = [0]
        ready = threading.Event()
        listener = threading.Thread(target=_count_messages, args=(stop_listener, counter, ready),
                                    daemon=True)
        listener.start()
        ready.wait(15.0)
        proc = psutil.Process(node.pid)
        client_log = results_dir / f"client_{rate_hz:g}hz.log"
        with open(client_log, "wb") as out:
            client = _start([sys.executable, "-m", "shadowhound_llm_bench.ros.client",
                             "--server-timeout", "30", "--quiet", "--repetitions",
                             str(test_repetitions),
                             "--no-pull", "--run-name", f"node-{rate_hz:g}hz"],
                            stdout=out, stderr=subprocess.STDOUT)
        progress(f"  node at {rate_hz:g} Hz: pid {node.pid}, goal sent by the console client")
        cpu_start = sum(proc.cpu_times()[:2])
        started = time.monotonic()
        messages_start = counter[0]
        cpu_samples: List[float] = []
        rss: List[int] = []
        proc.cpu_percent(None)
        deadline = started + run_deadline_s
        while client.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            cpu_samples.append(proc.cpu_percent(None))
            rss.append(proc.memory_info().rss)
        run_s = time.monotonic() - started
        cpu_s = sum(proc.cpu_times()[:2]) - cpu_start
        messages = counter[0] - messages_start
        if client.poll() is None:
            progress(f"  node at {rate_hz:g} Hz: the run passed {run_deadline_s:g} s, stopping")
        exit_code = client.poll()
        return NodeCost(
            rate_hz=rate_hz, cpu_percent=100.0 * cpu_s / run_s,
            cpu_p95_percent=sorted(cpu_samples)[int(0.95 * (len(cpu_samples) - 1))]
            if cpu_samples else 0.0,
            rss_median_bytes=statistics.median(rss) if rss else 0,
            rss_peak_bytes=max(rss, default=0), run_s=run_s, messages=messages,
            message_rate_hz=messages / run_s, client_exit=-1 if exit_code is None else exit_code)
    finally:
        _stop(client)
        _stop(node)
        stop_listener.set()
        if listener is not None:
            listener.join(timeout=5)
        sim.remove()


__all__ = ["NodeCost", "SamplingLatency", "measure_node_cost", "measure_sampling"]
