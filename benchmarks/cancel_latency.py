"""
Cancel through the node, on a busy machine: cancel to result, and cancel to /api/ps empty.

Starts the thor simulator in a Docker container, the llm_bench node as a process and two busy
processes (one per core of a 2-core machine), then sends goals and cancels each one: 1 s into
the load of llama3.3:70b (about 3 s here), and 1 s into the warm-up stream of deepseek-r1:7b.
Per phase it prints p50 / p99 / max of the time from the cancel request to the result, and of
the time from the cancel request to /api/ps listing nothing for good (polled every 50 ms over
a 12 s window),
and counts the goals whose result, results.json and summary.md named different models.

    python benchmarks/cancel_latency.py [--goals 10] [--repo PATH] [--idle]

--repo runs the node from another checkout (e.g. the main branch) for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PS_EMPTY_DEADLINE_S = 12.0  # the window /api/ps is watched after each cancel
POLL_S = 0.05
CANCEL_AFTER_S = 1.0


def _percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(share * (len(ordered) - 1)))))
    return ordered[index]


def _busy(count: int) -> List[subprocess.Popen]:
    """Start processes that each keep one core busy (stopped by PID at the end)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(count)]


def _listed(url: str) -> Optional[List[str]]:
    import httpx

    try:
        return [m["name"] for m in httpx.get(f"{url}/api/ps", timeout=2.0).json()["models"]]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _ps_empty_after(url: str, since: float) -> float:
    """
    Seconds from `since` until /api/ps lists nothing for good (nan: not empty at the end).

    Watched for the whole window: a load the cancel cut shows up seconds later, so the first
    empty answer proves nothing; the time counted is that of the empty answer after the last
    one that listed a model.
    """
    empty_since: Optional[float] = None
    while time.monotonic() - since < PS_EMPTY_DEADLINE_S:
        names = _listed(url)
        if names:
            empty_since = None
        elif names == [] and empty_since is None:
            empty_since = time.monotonic() - since
        time.sleep(POLL_S)
    return float("nan") if empty_since is None else empty_since


def _node_argv(repo: Path, container: str, port: int, results: Path) -> List[str]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from seed_table_parts import _node_argv as seed_node_argv
    from shadowhound_llm_bench.sim.scenario import load_scenario

    argv = seed_node_argv(load_scenario("thor"), container=container, port=port, rate_hz=2.0,
                          results_dir=results, models=["phi4:14b"])
    # A fixed ROS reserve: the busy processes and this client must not decide whether the 70B
    # fits (it needs 0.64 GiB of the simulated Thor's 0.65).
    from shadowhound_llm_bench.core.settings.ros_args import parameter_args
    return argv + parameter_args("reserve.fixed_gib", 0.25)


def _node_env(repo: Path, domain: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["ROS_DOMAIN_ID"] = domain
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


def _agree(result: Any) -> bool:
    """Tell whether the result, results.json and summary.md name the same models loaded."""
    folder = Path(result.results_dir) if result.results_dir else None
    named = sorted(m for m in result.still_loaded_models)
    if folder is None or not (folder / "results.json").is_file():
        return not named
    end = json.loads((folder / "results.json").read_text()).get("residency", {}).get("end", {})
    in_json = sorted(str(i.get("model")) for i in end.get("still_loaded") or [])
    if not in_json and not end.get("verified"):
        in_json = ["?"]
    summary = (folder / "summary.md").read_text()
    in_md = sorted(line.split("- Still loaded: ", 1)[1].split(" — ")[0]
                   for line in summary.splitlines() if line.startswith("- Still loaded: ")
                   and not line.startswith("- Still loaded: none"))
    return named == in_json == in_md


def _one_goal(rclpy: Any, node: Any, action: Any, run_benchmark: Any, phase: str,
              url: str) -> Dict[str, float]:
    goal = run_benchmark.Goal()
    goal.models = ["llama3.3:70b" if phase == "load" else "deepseek-r1:7b"]
    goal.repetitions = 1
    goal.no_pull = True
    seen: Dict[str, float] = {}

    def feedback(message: Any) -> None:
        fb = message.feedback
        if phase == "load" and fb.phase == "loading" and "attempt" in fb.status:
            seen.setdefault("at", time.monotonic())
        if phase == "stream" and fb.phase == "warmup":
            seen.setdefault("at", time.monotonic())

    future = action.send_goal_async(goal, feedback_callback=feedback)
    rclpy.spin_until_future_complete(node, future, timeout_sec=30.0)
    handle = future.result()
    if handle is None or not handle.accepted:
        return {}
    end = time.monotonic() + 60.0
    while time.monotonic() < end and ("at" not in seen or
                                      time.monotonic() < seen["at"] + CANCEL_AFTER_S):
        rclpy.spin_once(node, timeout_sec=0.02)
    result_future = handle.get_result_async()
    canceled_at = time.monotonic()
    acknowledged: List[float] = []
    handle.cancel_goal_async().add_done_callback(
        lambda _f: acknowledged.append(time.monotonic() - canceled_at))
    rclpy.spin_until_future_complete(node, result_future, timeout_sec=30.0)
    if not result_future.done():
        return {}
    took_s = time.monotonic() - canceled_at
    result = result_future.result().result
    if result.status != "canceled":
        return {}
    return {"result_s": took_s, "ack_s": acknowledged[0] if acknowledged else float("nan"),
            "ps_empty_s": _ps_empty_after(url, canceled_at),
            "agree": float(_agree(result))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--goals", type=int, default=10, help="goals per phase")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout the node runs from")
    parser.add_argument("--idle", action="store_true", help="no busy processes")
    args = parser.parse_args()
    import docker

    from shadowhound_llm_bench.common.process_group import (
        start_process_group, stop_process_group, wait_for_text)
    from shadowhound_llm_bench.ros.interfaces_import import import_interfaces
    from shadowhound_llm_bench.sim.launcher import start_container_simulator

    domain = str((89 + int(os.environ.get("SHB_TEST_DOMAIN_SHIFT", "0"))) % 232)
    os.environ["ROS_DOMAIN_ID"] = domain
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    import rclpy
    from rclpy.action import ActionClient

    run_benchmark, _, _ = import_interfaces()
    results = Path(tempfile.mkdtemp(prefix="cancel-latency-"))
    docker_client = docker.from_env(timeout=60)
    name = f"cancel-latency-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(docker_client=docker_client, name=name, scenario="thor",
                                    port=0)
    url = f"http://127.0.0.1:{sim.port}"
    busy: List[subprocess.Popen] = []
    node = None
    rclpy.init()
    client_node = rclpy.create_node("cancel_latency_client")
    numbers: Dict[str, List[Dict[str, float]]] = {"load": [], "stream": []}
    try:
        log_path = results / "node.log"
        with open(log_path, "wb") as log:
            node = start_process_group(_node_argv(args.repo, name, sim.port, results),
                                       cwd=str(args.repo), env=_node_env(args.repo, domain),
                                       stdout=log, stderr=subprocess.STDOUT)
        wait_for_text(log_path, "ready: action", node, timeout_s=90.0, what="the node")
        action = ActionClient(client_node, run_benchmark, "/llm_bench/run_benchmark")
        if not action.wait_for_server(timeout_sec=30.0):
            raise RuntimeError("the node's action server did not appear")
        if not args.idle:
            busy = _busy(2)
        for goal in range(args.goals):
            for phase in ("load", "stream"):
                import httpx
                fault = {"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}} \
                    if phase == "stream" else {"reset": True}
                httpx.post(f"{url}/sim/faults", timeout=10, json=fault)
                numbers[phase].append(_one_goal(rclpy, client_node, action, run_benchmark,
                                                phase, url))
                httpx.post(f"{url}/sim/faults", timeout=10, json={"reset": True})
            print(f"  goal {goal + 1}/{args.goals} done", flush=True)
    finally:
        for process in busy:
            process.send_signal(signal.SIGKILL)
            process.wait()
        stop_process_group(node, first_signal=signal.SIGINT, grace_s=40.0)
        client_node.destroy_node()
        rclpy.try_shutdown()
        sim.remove()
        docker_client.close()
    machine = "idle" if args.idle else "2 busy processes"
    print(f"\nnode from {args.repo}, thor simulator in Docker, {machine}, "
          f"{args.goals} goals per phase")
    print("| Cancel during | n | cancel to result s p50 / p99 / max | cancel accepted s p50 "
          "| cancel to /api/ps empty s p50 / p99 / max | reports agree |")
    print("|---|---|---|---|---|---|")
    for phase, rows in numbers.items():
        done = [r for r in rows if r]
        result = [r["result_s"] for r in done]
        empty = [r["ps_empty_s"] for r in done]
        never = sum(1 for v in empty if v != v)
        empty_ok = [v for v in empty if v == v]
        agree = sum(int(r["agree"]) for r in done)
        print(f"| {phase} | {len(done)} | {_percentile(result, 0.5):.3f} / "
              f"{_percentile(result, 0.99):.3f} / {max(result, default=float('nan')):.3f} | "
              f"{_percentile([r['ack_s'] for r in done], 0.5):.3f} | "
              f"{_percentile(empty_ok, 0.5):.2f} / {_percentile(empty_ok, 0.99):.2f} / "
              f"{max(empty_ok, default=float('nan')):.2f}"
              + (f" ({never} still listed {PS_EMPTY_DEADLINE_S:.0f} s after the cancel)"
                 if never else "")
              + f" | {agree}/{len(done)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
