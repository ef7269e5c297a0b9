"""
robot_wins, node-killed part: the node SIGKILLed with a model loaded, then Nav2 grows.

Nav2 grows until the machine is out of memory and the kernel picks a victim.

The machine is the simulator's own (sim/machine.py: a memory cgroup of the scenario's size);
the node reads the machine's meminfo as on the robot. With the OOM score backstop on, the runner
must die and Nav2 live; the same with it off shows what the kernel picks on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from shadowhound_llm_bench.adapters.ollama_client import (  # noqa: E402
    OllamaClient, OllamaError)
from shadowhound_llm_bench.core.units import MIB  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STREAM_MODEL = "phi4:14b"


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


NODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from types import SimpleNamespace
import psutil
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.oom_score import read_oom_score_adj
url, where, nav2_pid, model, backstop = sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    sys.argv[5], sys.argv[6] == "on"
meminfo = sys.argv[7]
client = OllamaClient(base_url=url)
refused, limit = [], 0
if where.startswith("docker:"):
    # The node as it runs on the robot: a guard with both backstops over the Docker container.
    from shadowhound_llm_bench.adapters.docker_container import DockerContainer
    from shadowhound_llm_bench.adapters.host_memory import ProcMeminfoHost
    from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
    from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom
    from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
    from shadowhound_llm_bench.engine.guard_building import build_memory_guard
    MIB = 1 << 20
    backend = DockerContainer(name=where[7:], ollama_base_url=url)
    settings = preset_settings("adaptive", memory_scale=1 / 64, safety_buffer_bytes=64 * MIB,
                               sample_period_s=0.1, enforce_container_limit=backstop,
                               oom_score_backstop=backstop)
    # The product's own reserve over the real processes, the machine's meminfo as on the robot.
    headroom = RosHeadroom.from_settings(RosReserveSettings(floor_bytes=128 * MIB, window_s=5.0,
                                                            margin_bytes=8 * MIB))
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=1 / 64,
                               host=ProcMeminfoHost(path=meminfo), headroom=headroom)
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


class SimMachineCgroup:
    """The simulator's own machine (sim/machine.py): its memory cgroup, ros group and meminfo."""

    def __init__(self, machine: Any) -> None:
        self.machine = machine
        self.path = Path(machine.cgroup_dir)
        self.limit_bytes = int(machine.total_bytes)
        self.meminfo = machine.meminfo_path

    @property
    def procs(self) -> str:
        """Return the file that moves a process into the machine's ros cgroup."""
        return str(Path(self.machine.sub_cgroup("ros")) / "cgroup.procs")

    def oom_kills(self) -> int:
        """Return how many processes the kernel's OOM killer took in the machine."""
        kills = 0
        for control in self.path.rglob("memory.oom_control"):
            for line in control.read_text().splitlines():
                if line.startswith("oom_kill "):
                    kills += int(line.split()[1])
        return kills


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
        machine = SimMachineCgroup(sim.machine)
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
    from shadowhound_llm_bench.sim.launcher import start_local_simulator

    outcomes = []
    with start_local_simulator(scenario="thor", ready_timeout_s=60.0) as sim:
        machine = SimMachineCgroup(sim.machine)
        for rep in range(repetitions):
            outcomes.append(_one_kill(machine, sim.base_url, str(sim.pid), backstop))
            print(f"  node-killed repetition {rep + 1}/{repetitions} "
                  f"(backstop {'on' if backstop else 'off'}) done", flush=True)
    return outcomes


def _one_kill(machine: SimMachineCgroup, url: str, where: str, backstop: bool) -> Dict:
    nav2 = Nav2StandIn(hold_mib=16, cgroup_procs=machine.procs)
    node = subprocess.Popen(
        [sys.executable, "-c", NODE, str(REPO), url, where, str(nav2.process.pid),
         STREAM_MODEL, "on" if backstop else "off", machine.meminfo], stdout=subprocess.PIPE,
        text=True, stderr=subprocess.DEVNULL, start_new_session=True)
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
