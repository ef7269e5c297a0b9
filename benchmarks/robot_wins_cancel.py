"""
robot_wins, cancel part: a guarded run canceled during a load and during a stream.

In-process and through the real node's action; seconds from the cancel to the run (or the
goal's result) ending.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowhound_llm_bench.adapters.ollama_client import (  # noqa: E402
    OllamaClient, OllamaError)
from shadowhound_llm_bench.adapters.process_container import ProcessContainer  # noqa: E402
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings  # noqa: E402
from shadowhound_llm_bench.core.runs.progress import Phase  # noqa: E402
from shadowhound_llm_bench.core.settings.run_options import RunOptions  # noqa: E402
from shadowhound_llm_bench.core.runs.suite import load_suite  # noqa: E402
from shadowhound_llm_bench.core.units import MIB  # noqa: E402
from shadowhound_llm_bench.engine.cancellation import CancelToken  # noqa: E402
from shadowhound_llm_bench.engine.guard_building import build_memory_guard  # noqa: E402
from shadowhound_llm_bench.engine.runner import BenchmarkRunner  # noqa: E402
from shadowhound_llm_bench.common.net import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PERIOD_S = 0.1


def _quietly(call: Any) -> None:
    try:
        call()
    except OllamaError:
        pass  # the preemption cuts it: that is what is measured


# ---------------------------------------------------------------------------------- cancel
def cancel_part(repetitions: int, results: Path) -> Dict[str, List[float]]:
    """Cancel guarded runs during a load and during a stream; seconds to run() returning."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ProcessContainer(
        name="robot-wins-cancel", ollama_base_url=url, cwd=str(REPO),
        argv=[sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", "thor",
              "--port", str(port), "--quiet"])
    backend.start(deadline_s=60)
    latencies: Dict[str, List[float]] = {"load": [], "stream": []}
    try:
        for rep in range(repetitions):
            for phase in ("load", "stream"):
                latencies[phase].append(_one_cancel(url, backend, results, phase))
            print(f"  cancel repetition {rep + 1}/{repetitions} done", flush=True)
    finally:
        backend.close()
    return latencies


def _one_cancel(url: str, backend: Any, results: Path, phase: str) -> float:
    import httpx

    client = OllamaClient(base_url=url)
    settings = preset_settings("adaptive", memory_scale=1 / 64, num_ctx=4096,
                               sample_period_s=SAMPLE_PERIOD_S, safety_buffer_bytes=64 * MIB)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=1 / 64,
                               footprint_cache_path=str(results / "footprints.json"))
    token = CancelToken()
    canceled_at: List[float] = []
    model = "llama3.3:70b" if phase == "load" else "deepseek-r1:7b"
    if phase == "stream":
        httpx.post(f"{url}/sim/faults", timeout=5,
                   json={"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}})

    def cancel_later() -> None:
        canceled_at.append(time.monotonic())
        token.cancel("benchmark cancel")

    def progress(event: Any) -> None:
        hit = (event.phase == Phase.LOADING and "attempt" in event.status) if phase == "load" \
            else event.phase == Phase.WARMUP
        if hit and not canceled_at:
            timer = threading.Timer(0.4 if phase == "load" else 1.0, cancel_later)
            timer.daemon = True
            timer.start()

    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(repetitions=1),
                             suite=load_suite("robot_mission"), results_root=results,
                             run_name=f"cancel-{phase}", on_progress=progress, cancel=token)
    try:
        runner.run([model])
        returned = time.monotonic()
    finally:
        guard.close()
        client.close()
    httpx.post(f"{url}/sim/faults", timeout=5, json={"reset": True})
    with OllamaClient(base_url=url) as cleaner:
        for entry in cleaner.ps():
            cleaner.unload(str(entry.get("name")))
    time.sleep(0.3)
    return returned - canceled_at[0] if canceled_at else float("nan")


# ---------------------------------------------------------------------------------- action cancel
def action_cancel_part(repetitions: int, results: Path) -> Dict[str, List[float]]:
    """Through the real node: goal cancel (client side) to the result arriving, per phase."""
    import docker

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from seed_table_parts import _node_argv, _start, _stop  # the seed table's node launcher
    from shadowhound_llm_bench.common.process_group import wait_for_text
    from shadowhound_llm_bench.ros.interfaces_import import import_interfaces
    from shadowhound_llm_bench.sim.launcher import start_container_simulator
    from shadowhound_llm_bench.sim.scenario import load_scenario

    shift = int(os.environ.get("SHB_TEST_DOMAIN_SHIFT", "0"))
    os.environ["ROS_DOMAIN_ID"] = str((60 + shift) % 232)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    import rclpy
    from rclpy.action import ActionClient

    run_benchmark, _, _ = import_interfaces()
    docker_client = docker.from_env(timeout=60)
    name = f"robot-wins-node-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(docker_client=docker_client, name=name, scenario="thor",
                                    port=0)
    url = f"http://127.0.0.1:{sim.port}"
    latencies: Dict[str, List[float]] = {"load": [], "stream": []}
    node = None
    rclpy.init()
    client_node = rclpy.create_node("robot_wins_client")
    try:
        log_path = results / "node.log"
        with open(log_path, "wb") as log:
            import seed_table_parts
            seed_table_parts.BENCH_DOMAIN_ID = os.environ["ROS_DOMAIN_ID"]
            node = _start(_node_argv(load_scenario("thor"), container=name, port=sim.port,
                                     rate_hz=2.0, results_dir=results, models=["phi4:14b"]),
                          stdout=log, stderr=subprocess.STDOUT)
        wait_for_text(log_path, "ready: action", node, timeout_s=60.0, what="the node")
        action = ActionClient(client_node, run_benchmark, "/llm_bench/run_benchmark")
        if not action.wait_for_server(timeout_sec=30.0):
            raise RuntimeError("the node's action server did not appear")
        for rep in range(repetitions):
            for phase in ("load", "stream"):
                if phase == "stream":
                    _post_faults(url, {"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}})
                latencies[phase].append(_cancel_goal(rclpy, client_node, action,
                                                     run_benchmark, phase))
                _post_faults(url, {"reset": True})
                time.sleep(1.0)  # the node's unload of the canceled model goes through
            print(f"  action cancel repetition {rep + 1}/{repetitions} done", flush=True)
    finally:
        _stop(node)
        client_node.destroy_node()
        rclpy.try_shutdown()
        sim.remove()
        docker_client.close()
    return latencies


def _post_faults(url: str, faults: Dict[str, Any], deadline_s: float = 60.0) -> None:
    """Switch simulator faults, waiting out a restart of its container (the node restarts)."""
    import httpx

    end = time.monotonic() + deadline_s
    while True:
        try:
            httpx.post(f"{url}/sim/faults", timeout=5, json=faults).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _cancel_goal(rclpy: Any, node: Any, action: Any, run_benchmark: Any, phase: str) -> float:
    goal = run_benchmark.Goal()
    goal.models = ["llama3.3:70b" if phase == "load" else "deepseek-r1:7b"]
    goal.repetitions = 1
    goal.no_pull = True
    seen: Dict[str, float] = {}

    def feedback(message: Any) -> None:
        status = message.feedback.status
        if phase == "load" and message.feedback.phase == "loading" and "attempt" in status:
            seen.setdefault("at", time.monotonic())
        if phase == "stream" and message.feedback.phase == "warmup":
            seen.setdefault("at", time.monotonic())

    future = action.send_goal_async(goal, feedback_callback=feedback)
    rclpy.spin_until_future_complete(node, future, timeout_sec=30.0)
    handle = future.result()
    if handle is None or not handle.accepted:
        return float("nan")
    delay_s = 0.4 if phase == "load" else 1.0
    end = time.monotonic() + 60.0

    def waiting() -> bool:
        return "at" not in seen or time.monotonic() < seen["at"] + delay_s

    while time.monotonic() < end and waiting():
        rclpy.spin_once(node, timeout_sec=0.02)
    result_future = handle.get_result_async()
    canceled_at = time.monotonic()
    handle.cancel_goal_async()
    rclpy.spin_until_future_complete(node, result_future, timeout_sec=30.0)
    if not result_future.done():
        return float("nan")
    took_s = time.monotonic() - canceled_at
    # Only a run that was still going counts: the result must say it was canceled.
    return took_s if result_future.result().result.status == "canceled" else float("nan")
