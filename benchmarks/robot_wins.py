"""
The robot wins in real time: a Nav2 stand-in grows during a load, a stream, between models.

Run: .venv/bin/python benchmarks/robot_wins.py [--repetitions 10] [--smoke]
(with DOCKER_HOST pointing at a Docker engine; the machine-cgroup part needs root).

Parts, each repeated --repetitions times:
- preemption: the thor simulator in a real Docker container (memory charged to the container),
  the real memory guard sampling every 0.1 s, and a real process named controller_server
  (shadowhound_llm_bench.sim.growing_nav2) that grows by --growth-mib during the load of the
  largest model that fits, during a long streamed answer, and between two models. Measured from
  the sample that first shows the breach to the first sample with the models' memory back
  (reaction), the minimum ROS headroom and the time it stayed below zero (under the reserve).
- cancel: a guarded run canceled during a load and during a stream; cancel() to run() returning
  with its partial reports written (the action's result is built from that).
- node killed: a machine cgroup (the simulated machine's RAM, a real kernel memory limit) holds
  the simulator (a local process and its runners) and the Nav2 stand-in; a node process with the
  OOM score backstop loads a model and is SIGKILLed; then Nav2 grows until the machine is out of
  memory and the kernel picks a victim. With the backstop on, the runner must die and Nav2 live;
  the same with it off shows what the kernel picks on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from shadowhound_llm_bench.adapters.host_memory import SimulatedHost  # noqa: E402
from shadowhound_llm_bench.adapters.ollama_client import (  # noqa: E402
    OllamaClient, OllamaError)
from shadowhound_llm_bench.adapters.process_container import ProcessContainer  # noqa: E402
from shadowhound_llm_bench.core.policy_settings import preset_settings  # noqa: E402
from shadowhound_llm_bench.core.progress import Phase  # noqa: E402
from shadowhound_llm_bench.core.run_options import RunOptions  # noqa: E402
from shadowhound_llm_bench.core.stats import percentile  # noqa: E402
from shadowhound_llm_bench.core.suite import load_suite  # noqa: E402
from shadowhound_llm_bench.core.units import MIB  # noqa: E402
from shadowhound_llm_bench.engine.cancellation import CancelToken  # noqa: E402
from shadowhound_llm_bench.engine.memory_guard import build_memory_guard  # noqa: E402
from shadowhound_llm_bench.engine.runner import BenchmarkRunner  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PERIOD_S = 0.1
# The thor scenario at 1/64: a machine with 700 MiB of which 160 MiB are the system's.
HOST_TOTAL_BYTES = 700 * MIB
SYSTEM_RESERVE_BYTES = 160 * MIB
# Model memory charged to the container: what the guard's container readings see today.
PREEMPTION_SCENARIO = "thor_cgroup"
LOAD_MODEL = "qwen2.5-coder:32b"  # the largest that fits beside Nav2 here (~310 MiB)
STREAM_MODEL = "phi4:14b"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nav2StandIn:
    """A real process named controller_server that grows and shrinks on command."""

    def __init__(self, hold_mib: float = 16.0, cgroup_procs: str = "") -> None:
        self.process = subprocess.Popen(
            ["controller_server", "-m", "shadowhound_llm_bench.sim.growing_nav2",
             "--hold-mib", str(hold_mib)], executable=sys.executable, cwd=str(REPO),
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        if cgroup_procs:
            Path(cgroup_procs).write_text(str(self.process.pid))
        self.process.stdout.readline()

    def command(self, text: str) -> None:
        """Send grow/shrink and wait for the answer."""
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

    def grow_async(self, n_bytes: int) -> threading.Thread:
        """Start growing; the pages are touched while the caller watches."""
        thread = threading.Thread(target=self.command, args=(f"grow {n_bytes}",), daemon=True)
        thread.start()
        return thread

    def headroom(self) -> SimpleNamespace:
        """ROS memory as the node measures it: live RSS and a reserve 32 MiB above it."""
        live = psutil.Process(self.process.pid).memory_info().rss
        return SimpleNamespace(live_bytes=live, reserve_bytes=live + 32 * MIB)

    def alive(self) -> bool:
        """Tell whether the process still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill it by its pid."""
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _stats(values: List[Optional[float]]) -> str:
    known = [v for v in values if v is not None and v == v]  # None or NaN: not measured
    if not known:
        return "n/a"
    return (f"{statistics.median(known):.3f} / {percentile(known, 99):.3f}"
            f"{'' if len(known) == len(values) else f' ({len(values) - len(known)} missing)'}")


# ---------------------------------------------------------------------------------- preemption
def _guard(sim: Any, backend: Any, nav2: Nav2StandIn) -> Any:
    settings = preset_settings("adaptive", memory_scale=1 / 64, num_ctx=4096,
                               safety_buffer_bytes=64 * MIB, sample_period_s=SAMPLE_PERIOD_S,
                               unload_deadline_s=5.0, preempt_release_deadline_s=3.0)
    client = OllamaClient(base_url=sim.url, request_timeout_s=30)
    guard = build_memory_guard(
        settings=settings, client=client, backend=backend,
        host=SimulatedHost(total_bytes=HOST_TOTAL_BYTES,
                           system_reserve_bytes=SYSTEM_RESERVE_BYTES),
        headroom=nav2.headroom)
    return guard, client


def _held(guard: Any) -> int:
    reading = guard.monitor.sample_now()
    return reading.container.working_set_bytes - (guard._empty_working_set_bytes or 0)


def _episode(guard: Any, before: int, deadline_s: float = 30.0) -> Any:
    """Wait for the episode after the first `before` ones; None when none came."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        records = guard.preemptor.records()
        if len(records) > before:
            return records[before]
        time.sleep(0.02)
    return None


def _settle(client: OllamaClient, nav2: Nav2StandIn, growth: int, sim: Any) -> None:
    nav2.command(f"shrink {growth}")
    try:
        sim.set_faults({"reset": True})
    except Exception:  # after a restart the simulator may still be starting
        time.sleep(0.5)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            if not client.ps():
                break
            for entry in client.ps():
                client.unload(str(entry.get("name")))
        except OllamaError:
            pass
        time.sleep(0.1)
    time.sleep(0.5)  # the reserve and the budget settle


def preemption_part(repetitions: int, growth_mib: int) -> Dict[str, List[Any]]:
    """Run the three moments of growth; return the episodes per moment."""
    import docker

    from shadowhound_llm_bench.adapters.docker_container import DockerContainer
    from shadowhound_llm_bench.sim.launcher import start_container_simulator
    from shadowhound_llm_bench.sim.scenario import load_scenario

    docker_client = docker.from_env(timeout=60)
    name = f"robot-wins-{uuid.uuid4().hex[:8]}"
    scenario = load_scenario(PREEMPTION_SCENARIO)
    handle = start_container_simulator(
        docker_client=docker_client, name=name, scenario=PREEMPTION_SCENARIO, port=0,
        mem_limit_bytes=scenario.container_limit_physical_bytes)
    url = f"http://127.0.0.1:{handle.port}"
    sim = SimpleNamespace(url=url, set_faults=lambda faults: __import__("httpx").post(
        f"{url}/sim/faults", json=faults, timeout=5))
    nav2 = Nav2StandIn()
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client)
    guard, client = _guard(sim, backend, nav2)
    growth = growth_mib * MIB
    episodes: Dict[str, List[Any]] = {"load": [], "stream": [], "between": []}
    try:
        for rep in range(repetitions):
            # during the load of the largest model
            guard.before_model(LOAD_MODEL)
            loading = threading.Thread(target=_quietly, args=(
                lambda: client.load(LOAD_MODEL, keep_alive="5m", deadline_s=120),), daemon=True)
            loading.start()
            end = time.monotonic() + 20
            while _held(guard) < 60 * MIB and time.monotonic() < end:
                time.sleep(0.01)
            before = len(guard.preemptor.records())
            nav2.grow_async(growth).join()
            episodes["load"].append(_episode(guard, before))
            loading.join(30)
            _settle(client, nav2, growth, sim)
            # during a long streamed answer
            guard.before_model(STREAM_MODEL)
            client.load(STREAM_MODEL, keep_alive="5m", deadline_s=60)
            # 1/10 of phi4's speed: an answer of 2000 tokens takes minutes, as on a busy Thor.
            sim.set_faults({"decode_slowdown": {"after_cycles": 0, "fraction": 0.9}})
            streaming = threading.Thread(target=_quietly, args=(lambda: client.generate_stream(
                STREAM_MODEL, "Write a long status report.", deadline_s=120,
                options={"num_predict": 2000}, stall_s=60),), daemon=True)
            streaming.start()
            time.sleep(0.5)
            before = len(guard.preemptor.records())
            nav2.grow_async(growth).join()
            episodes["stream"].append(_episode(guard, before))
            streaming.join(30)
            _settle(client, nav2, growth, sim)
            # between two models: the last one is cached, nothing in flight
            guard.before_model(STREAM_MODEL)
            client.load(STREAM_MODEL, keep_alive="5m", deadline_s=60)
            time.sleep(0.3)
            before = len(guard.preemptor.records())
            nav2.grow_async(growth).join()
            episodes["between"].append(_episode(guard, before))
            _settle(client, nav2, growth, sim)
            print(f"  preemption repetition {rep + 1}/{repetitions} done", flush=True)
    finally:
        guard.close()
        client.close()
        backend.close()
        nav2.stop()
        handle.remove()
        docker_client.close()
    return episodes


def _quietly(call: Any) -> None:
    try:
        call()
    except OllamaError:
        pass  # the preemption cuts it: that is what is measured


# ---------------------------------------------------------------------------------- cancel
def cancel_part(repetitions: int, results: Path) -> Dict[str, List[float]]:
    """Cancel guarded runs during a load and during a stream; seconds to run() returning."""
    port = _free_port()
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
    from shadowhound_llm_bench.adapters.process_group import wait_for_text
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


# ---------------------------------------------------------------------------------- node killed
NODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from types import SimpleNamespace
import psutil
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.oom_score import read_oom_score_adj
url, where, nav2_pid, model, backstop = sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    sys.argv[5], sys.argv[6] == "on"
client = OllamaClient(base_url=url)
refused, limit = [], 0
if where.startswith("docker:"):
    # The node as it runs on the robot: a guard with both backstops over the Docker container.
    from shadowhound_llm_bench.adapters.docker_container import DockerContainer
    from shadowhound_llm_bench.adapters.host_memory import SimulatedHost
    from shadowhound_llm_bench.core.policy_settings import preset_settings
    from shadowhound_llm_bench.engine.memory_guard import build_memory_guard
    MIB = 1 << 20
    backend = DockerContainer(name=where[7:], ollama_base_url=url)
    settings = preset_settings("adaptive", memory_scale=1 / 64, safety_buffer_bytes=64 * MIB,
                               sample_period_s=0.1, enforce_container_limit=backstop,
                               oom_score_backstop=backstop)
    def headroom():
        live = psutil.Process(nav2_pid).memory_info().rss
        return SimpleNamespace(live_bytes=live, reserve_bytes=live + 32 * MIB)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               host=SimulatedHost(total_bytes=700 * MIB,
                                                  system_reserve_bytes=160 * MIB),
                               headroom=headroom)
    guard.oom_backstop and setattr(guard.oom_backstop, "ros_pids", lambda: [nav2_pid])
    guard.before_model(model)
    client.load(model, keep_alive="1h", deadline_s=120)
    end = time.monotonic() + 15  # the backstop looks every 0.25 s; a busy machine is slower
    while backstop and time.monotonic() < end:
        ids = [int(r[0]) for r in backend._container.top(ps_args="-o pid")["Processes"]]
        if any("runner" in psutil.Process(p).name() and read_oom_score_adj(p) == 1000
               for p in ids if psutil.pid_exists(p)):
            break
        time.sleep(0.1)
    time.sleep(0.3)  # and the container limit follows the last samples
    if guard.oom_backstop:
        refused = [a.error for a in guard.oom_backstop.adjustments if not a.ok]
    backend._container.reload()
    limit = int(backend._container.attrs["HostConfig"]["Memory"] or 0)
    runners = [int(r[0]) for r in backend._container.top(ps_args="-o pid")["Processes"]]
    runners = [p for p in runners if "runner" in psutil.Process(p).name()]
else:
    from shadowhound_llm_bench.engine.oom_backstop import OomBackstop
    server_pid = int(where)
    client.load(model, keep_alive="1h", deadline_s=120)
    if backstop:
        oom = OomBackstop(backend=SimpleNamespace(pid=server_pid),
                          ros_pids=lambda: [nav2_pid]).start()
        time.sleep(0.6)
        refused = [a.error for a in oom.adjustments if not a.ok]
    runners = [p.pid for p in psutil.Process(server_pid).children(recursive=True)]
print(json.dumps({"runners": runners, "adj": [read_oom_score_adj(p) for p in runners],
                  "nav2_adj": read_oom_score_adj(nav2_pid), "refused": refused,
                  "container_limit": limit}), flush=True)
time.sleep(3600)
"""


class MachineCgroup:
    """A memory cgroup (v1) standing for the whole simulated machine's RAM."""

    def __init__(self, limit_bytes: int) -> None:
        self.path = Path("/sys/fs/cgroup/memory") / f"robot-wins-{uuid.uuid4().hex[:8]}"
        self.limit_bytes = limit_bytes
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        memsw = self.path / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limit_bytes))

    @property
    def procs(self) -> str:
        """Return the file that moves a process in when its pid is written to it."""
        return str(self.path / "cgroup.procs")

    def oom_kills(self) -> int:
        """Return how many processes the kernel's OOM killer took in it and its children."""
        kills = 0
        for control in self.path.rglob("memory.oom_control"):
            for line in control.read_text().splitlines():
                if line.startswith("oom_kill "):
                    kills += int(line.split()[1])
        return kills

    def remove(self) -> None:
        """Remove it, and what Docker made of the same path in other controllers."""
        for path in [self.path] + list(Path("/sys/fs/cgroup").glob(f"*/{self.path.name}")):
            end = time.monotonic() + 10
            while path.exists() and time.monotonic() < end:
                try:
                    path.rmdir()
                except OSError:
                    time.sleep(0.2)


class _SimMachineCgroup(MachineCgroup):
    """The simulator's own machine (sim/machine.py) seen as a MachineCgroup."""

    def __init__(self, machine: Any) -> None:  # noqa: D107 - no cgroup of its own is made
        self.machine = machine
        self.path = Path(machine.cgroup_dir)
        self.limit_bytes = int(machine.total_bytes)

    @property
    def procs(self) -> str:
        """Return the file that moves a process into the machine's ros cgroup."""
        return str(Path(self.machine.sub_cgroup("ros")) / "cgroup.procs")

    def remove(self) -> None:
        """Leave the machine to its container (removed with it)."""


def container_node_killed_part(repetitions: int, scenario: str) -> List[Dict[str, Any]]:
    """Run the node-killed case in the simulator's Docker container inside its machine."""
    import docker

    from shadowhound_llm_bench.sim.launcher import start_container_simulator

    docker_client = docker.from_env(timeout=60)
    name = f"robot-wins-{scenario.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(docker_client=docker_client, name=name, scenario=scenario,
                                    port=0, ready_timeout_s=60.0)
    outcomes = []
    try:
        machine = _SimMachineCgroup(sim.machine)
        url = f"http://127.0.0.1:{sim.port}"
        for rep in range(repetitions):
            outcomes.append(_one_kill(machine, url, f"docker:{name}", True))
            print(f"  node-killed repetition {rep + 1}/{repetitions} ({scenario}) done",
                  flush=True)
    finally:
        sim.remove()
        docker_client.close()
    return outcomes


def node_killed_part(repetitions: int, backstop: bool) -> List[Dict[str, Any]]:
    """Kill the node, grow Nav2 until the machine runs out; who did the kernel kill."""
    machine = MachineCgroup(HOST_TOTAL_BYTES - SYSTEM_RESERVE_BYTES)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", "thor", "--port",
         str(port), "--quiet"], cwd=str(REPO), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    Path(machine.procs).write_text(str(sim.pid))
    sim.stdout.readline()
    outcomes = []
    try:
        for rep in range(repetitions):
            outcomes.append(_one_kill(machine, url, str(sim.pid), backstop))
            print(f"  node-killed repetition {rep + 1}/{repetitions} "
                  f"(backstop {'on' if backstop else 'off'}) done", flush=True)
    finally:
        os.killpg(sim.pid, signal.SIGKILL)
        sim.wait(timeout=10)
        sim.stdout.close()
        machine.remove()
    return outcomes


def _one_kill(machine: MachineCgroup, url: str, where: str, backstop: bool) -> Dict:
    nav2 = Nav2StandIn(hold_mib=16, cgroup_procs=machine.procs)
    node = subprocess.Popen(
        [sys.executable, "-c", NODE, str(REPO), url, where, str(nav2.process.pid),
         STREAM_MODEL, "on" if backstop else "off"], stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL, start_new_session=True)
    before = json.loads(node.stdout.readline())
    kills_before = machine.oom_kills()
    node.kill()  # SIGKILL: no cleanup, no preemption, nothing but what was set before
    node.wait(timeout=10)
    node.stdout.close()
    started = time.monotonic()
    runner_dead_after: Optional[float] = None
    grown = 0
    while nav2.alive() and grown < machine.limit_bytes:
        try:
            nav2.command(f"grow {8 * MIB}")
        except (BrokenPipeError, OSError):
            break
        grown += 8 * MIB
        if runner_dead_after is None and not any(psutil.pid_exists(p)
                                                 for p in before["runners"]):
            runner_dead_after = time.monotonic() - started
            break
    runners_alive = any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                        for p in before["runners"])
    outcome = {"nav2_survived": nav2.alive(), "runner_killed": not runners_alive,
               "runner_adj": before["adj"], "nav2_adj": before["nav2_adj"],
               "refused": before["refused"], "oom_kills": machine.oom_kills() - kills_before,
               "runner_dead_after_s": runner_dead_after, "nav2_grew_mib": grown / MIB,
               "container_limit": before["container_limit"]}
    nav2.stop()
    with OllamaClient(base_url=url) as client:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                listed = client.ps()
            except OllamaError:
                listed = []
            if not listed:
                break
            for entry in listed:
                client.unload(str(entry.get("name")))
            time.sleep(0.2)
    return outcome


# ---------------------------------------------------------------------------------- report
def _table(episodes: Dict[str, List[Any]], cancels: Dict[str, List[float]],
           kills: Dict[str, List[Dict[str, Any]]]) -> str:
    lines = ["| Moment of growth | n | reaction s p50 / p99 | unload or restart s p50 | "
             "target s (period + unload) | restarts | min ROS headroom MiB | below reserve "
             "s p50 / p99 |", "|---|---|---|---|---|---|---|---|"]
    for moment, records in episodes.items():
        done = [r for r in records if r is not None]
        reaction = [r.released_after_s for r in done]
        unload = [(r.released_after_s - r.unload_sent_after_s)
                  for r in done if r.released_after_s is not None]
        unload_p50 = statistics.median(unload) if unload else float("nan")
        lines.append(
            f"| {moment} | {len(records)} | {_stats(reaction)} | {unload_p50:.3f} | "
            f"{SAMPLE_PERIOD_S + unload_p50:.3f} | {sum(r.restarted for r in done)} | "
            f"{min((r.min_ros_headroom_bytes for r in done), default=0) / MIB:.1f} | "
            f"{_stats([r.below_reserve_s for r in done])} |")
    lines += ["", "| Cancel during | n | cancel to result s p50 / p99 | max s |",
              "|---|---|---|---|"]
    for phase, values in cancels.items():
        lines.append(f"| {phase} | {len(values)} | {_stats(values)} | "
                     f"{max(values, default=float('nan')):.3f} |")
    lines += ["", "| Node SIGKILLed, Nav2 grows | n | Nav2 survived | runner killed | "
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
    limits = [o["container_limit"] for o in kills.get("backstop on, container charged", [])]
    if limits:
        lines += ["", f"Container limit the node had set before it was killed: "
                  f"{statistics.median(limits) / MIB:.0f} MiB (median; the scenario's own "
                  f"limit is {56 * 1024 / 64:.0f} MiB)"]
    refused = {r for o in kills.get("backstop on", []) for r in o["refused"]}
    if refused:
        lines += ["", "Refused: " + "; ".join(sorted(refused))]
    return "\n".join(lines)


def main() -> int:
    """Run the parts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--growth-mib", type=int, default=320)
    parser.add_argument("--smoke", action="store_true", help="one repetition of each part")
    parser.add_argument("--parts", default="preemption,cancel,action,killed")
    args = parser.parse_args()
    repetitions = 1 if args.smoke else args.repetitions
    parts = set(args.parts.split(","))
    started = time.monotonic()
    episodes: Dict[str, List[Any]] = {}
    cancels: Dict[str, List[float]] = {}
    kills: Dict[str, List[Dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="robot-wins-") as tmp:
        if "preemption" in parts:
            episodes = preemption_part(repetitions, args.growth_mib)
        if "cancel" in parts:
            cancels = cancel_part(repetitions, Path(tmp))
        if "action" in parts:
            for phase, values in action_cancel_part(repetitions, Path(tmp)).items():
                cancels[f"{phase}, goal cancel through the node"] = values
        if "killed" in parts:
            kills["backstop on"] = node_killed_part(repetitions, backstop=True)
            for scenario, label in (("thor_cgroup", "container charged"),
                                    ("thor", "unified memory")):
                kills[f"backstop on, {label}"] = container_node_killed_part(repetitions,
                                                                            scenario)
            kills["backstop off"] = node_killed_part(max(1, repetitions // 3), backstop=False)
    print(f"\nrobot_wins: {repetitions} repetition(s), sampling every {SAMPLE_PERIOD_S} s, "
          f"Nav2 grows by {args.growth_mib} MiB, {time.monotonic() - started:.0f} s\n")
    print(_table(episodes, cancels, kills))
    missing = sum(r is None for records in episodes.values() for r in records)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
