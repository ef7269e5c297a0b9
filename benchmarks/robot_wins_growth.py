"""
robot_wins, growth part: the scenario's Nav2 load grows during a load, a stream and between models.

On each machine (`thor`: unified memory, `thor_cgroup`: model memory charged to the container)
the simulator runs in its real Docker container inside the machine's memory cgroup, with the
scenario's ROS load beside it and one more Nav2 process that grows. The product runs as on the
robot: its memory guard reads the machine's meminfo, nvidia-smi and drop_caches, its reserve
comes from its own RosHeadroom scanning the real processes. The referee (benchmarks/referee, a
separate process that imports nothing of the product) samples the machine cgroup, the driver's
pool and the runners at 20 Hz; every number of this part comes from its samples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from referee import Referee, Sample, Watch, judge_headroom, read_samples  # noqa: E402
from robot_wins_killed import Nav2StandIn  # noqa: E402 - alive() and stop() of the stand-in

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
PERIOD_S = 0.05  # the referee's sample period
GUARD_PERIOD_S = 0.1  # the product's
MODEL = "llama3.3:70b"  # the largest model of the scenario: ~43 GB on Thor
MOMENTS = ("load", "stream", "between")
SETTLE_TIMEOUT_S = 30.0
# The unload the promise allows for: what an unload of the largest model takes on the
# simulated Thor (about 0.3 s at 1/8 time, measured by the referee), with a busy-machine margin.
UNLOAD_ALLOWANCE_S = 1.0


@dataclass
class Episode:
    """One growth, judged by the referee."""

    moment: str
    grew_bytes: int
    crossed: bool  # the truth went under the reserve
    under_s: Optional[float]  # crossing to back above (0 when it never crossed; None: never back)
    memory_back_s: Optional[float]  # crossing (or growth) to the models' memory given back
    min_headroom_bytes: int
    drops: int  # cache drops the driver saw during the episode
    oom_kills: int  # processes the kernel killed in the machine during the episode
    kept: bool  # the referee's verdict: under no longer than a period plus the unload, no kill


@dataclass
class MachineResult:
    """Episodes of one machine, with the reserve the referee judged against."""

    scenario: str
    reserve_bytes: int
    episodes: List[Episode] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


class GrowingNav2(Nav2StandIn):
    """A real Nav2 process (sim/growing_nav2.py) in the machine's `ros` group, grown on demand."""

    def __init__(self, machine: Any, hold_mib: float = 16.0) -> None:
        procs = os.path.join(machine.sub_cgroup("ros"), "cgroup.procs")

        def enter() -> None:
            with open(procs, "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))
            os.setsid()

        self.process = subprocess.Popen(
            ["controller_server", "-m", "shadowhound_llm_bench.sim.growing_nav2",
             "--hold-mib", str(hold_mib)], executable=sys.executable, cwd=str(REPO),
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, preexec_fn=enter)
        self.process.stdout.readline()
        self.held_extra = 0

    def grow(self, n_bytes: int) -> bool:
        """Touch n_bytes more; False when the process died doing it (killed by the kernel)."""
        try:
            self.process.stdin.write(f"grow {n_bytes}\n")
            self.process.stdin.flush()
            answered = bool(self.process.stdout.readline())
        except (BrokenPipeError, OSError):
            answered = False
        if answered:
            self.held_extra += n_bytes
        return answered

    def shrink(self) -> None:
        """Give back everything grown."""
        if self.held_extra and self.alive():
            self.process.stdin.write(f"shrink {self.held_extra}\n")
            self.process.stdin.flush()
            self.process.stdout.readline()
        self.held_extra = 0


class MachineProcesses:
    """The product's ROS scan limited to this machine's processes (other machines run here)."""

    def __init__(self, scanner: Any, machine: Any) -> None:
        self._scanner = scanner
        self._procs = os.path.join(machine.sub_cgroup("ros"), "cgroup.procs")

    def scan(self) -> Any:
        """One scan of the product's scanner, keeping the processes of the machine's ros group."""
        from shadowhound_llm_bench.adapters.ros_processes import RosProcessScan

        with open(self._procs, encoding="ascii") as handle:
            pids = {int(line) for line in handle if line.strip()}
        scan = self._scanner.scan()
        return RosProcessScan(processes=tuple(p for p in scan.processes if p.pid in pids),
                              scan_s=scan.scan_s)


def _product(sim: Any, scenario: Any, docker_client: Any, results: Path,
             drop_caches: str = "auto") -> Any:
    """Build the product's guard as on the robot: machine readings, RosHeadroom, adaptive."""
    from shadowhound_llm_bench.adapters.docker_container import DockerContainer
    from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
    from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
    from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
    from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
    from shadowhound_llm_bench.engine.guard_building import build_memory_guard
    from shadowhound_llm_bench.adapters.ros_processes import make_ros_process_scanner
    from shadowhound_llm_bench.engine.ros_gpu_memory import RosGpuMemory
    from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom

    params = scenario.node_parameters
    settings = preset_settings("adaptive", memory_scale=scenario.memory_scale, num_ctx=4096,
                               safety_buffer_bytes=params["safety_buffer_bytes"],
                               sample_period_s=GUARD_PERIOD_S, unload_deadline_s=5.0,
                               preempt_release_deadline_s=3.0, preempt_wait_s=5.0,
                               drop_caches=drop_caches)
    # The scenario's reserve floor, and a window short enough for the repetitions to settle.
    names = [re.escape(node.name) for node in scenario.ros_nodes] + ["controller_server"]
    reserve = RosReserveSettings(floor_bytes=params["ros_reserve_bytes"] // 2, window_s=2.0,
                                 margin_bytes=int(0.5 * (1 << 30) * scenario.memory_scale),
                                 include_patterns=(r"\b(" + "|".join(names) + r")\b",))
    machine = sim.machine
    headroom = RosHeadroom(scanner=MachineProcesses(make_ros_process_scanner(reserve), machine),
                           settings=reserve, gpu=RosGpuMemory.open(machine.nvidia_smi_path))
    sources = ("gpu_processes", "cgroup_anon") if machine.unified else ("cgroup_anon",)
    memory = MemorySourceSettings(meminfo_path=machine.meminfo_path,
                                  nvidia_smi_command=machine.nvidia_smi_path,
                                  drop_caches_path=machine.drop_caches_path, sources=sources)
    client = OllamaClient(base_url=sim.base_url, request_timeout_s=30)
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.base_url,
                              docker_client=docker_client)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=scenario.memory_scale,
                               headroom=headroom, memory_sources=memory,
                               footprint_cache_path=str(results / f"fp-{sim.name}.json"))
    return guard, client, backend, headroom


def _quietly(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - the preemption cuts it: that is what is measured
        pass


def _latest(referee: Referee) -> Sample:
    sample = referee.wait_next()
    if sample is None:
        raise RuntimeError("the referee stopped sampling")
    return sample


def _until(referee: Referee, predicate: Callable[[Sample], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate(_latest(referee)):
            return True
    return False


def _settle(sim: Any, client: Any, nav2: GrowingNav2, referee: Referee, group: str) -> float:
    """Back to the start: Nav2 shrinks, nothing loaded, the pool released (the harness's drop)."""
    import httpx

    nav2.shrink()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{sim.base_url}/sim/faults", json={"reset": True}, timeout=5)
            listed = client.ps(deadline_s=5)
            for entry in listed:
                client.unload(str(entry.get("name")), deadline_s=5)
            if not listed:
                break
        except Exception:  # noqa: BLE001 - after a restart the server may still be starting
            time.sleep(0.3)
    settle_t = referee.mark("harness drop")  # drops after this one are not the product's
    sim.machine.drop_caches()
    _until(referee, lambda s: not s.runners and s.model_bytes(group) < 32 * MIB, 15.0)
    time.sleep(2.5)  # the product's reserve window (2 s) forgets the growth
    return settle_t


def _model_truth(client: Any, referee: Referee, group: str) -> int:
    """Load the model once, unguarded; return the most memory the referee saw it hold."""
    start_t = referee.mark("warm-up load")
    client.load(MODEL, keep_alive="5m", deadline_s=120)
    time.sleep(0.5)
    referee.wait_next()
    return max(s.model_bytes(group) for s in referee.samples() if s.t >= start_t)


def _start_moment(moment: str, sim: Any, client: Any, guard: Any, referee: Referee,
                  group: str) -> Optional[threading.Thread]:
    """Bring the machine to the moment; return the request thread the growth meets."""
    import httpx

    guard.before_model(MODEL)
    if moment == "load":
        thread = threading.Thread(target=_quietly, args=(
            lambda: client.load(MODEL, keep_alive="5m", deadline_s=120),), daemon=True)
        thread.start()
        _until(referee, lambda s: s.model_bytes(group) > 200 * MIB, 60.0)
        return thread
    client.load(MODEL, keep_alive="5m", deadline_s=120)
    if moment == "between":
        time.sleep(0.3)
        return None
    # A long answer at a tenth of the model's speed: minutes, as on a busy Thor.
    httpx.post(f"{sim.base_url}/sim/faults", timeout=5,
               json={"decode_slowdown": {"after_cycles": 0, "fraction": 0.9}})
    thread = threading.Thread(target=_quietly, args=(lambda: client.generate_stream(
        MODEL, "Write a long status report.", deadline_s=120, options={"num_predict": 2000},
        stall_s=60),), daemon=True)
    thread.start()
    time.sleep(0.5)
    return thread


def _judge(moment: str, samples: List[Sample], *, start_t: float, end_t: float, settle_t: float,
           reserve: int, grew: int, group: str, base_model_bytes: int) -> Episode:
    window = [s for s in samples if start_t <= s.t <= end_t]
    verdict = judge_headroom(window, reserve_bytes=reserve, period_s=PERIOD_S,
                             unload_s=UNLOAD_ALLOWANCE_S)
    crossing = verdict.breaches[0].start_t if verdict.breaches else None
    under: Optional[float] = 0.0
    if verdict.breaches:
        ends = [b.end_t for b in verdict.breaches]
        under = None if ends[-1] is None else ends[-1] - crossing
    back: Optional[float] = None
    origin = crossing if crossing is not None else start_t
    for sample in window:
        if sample.t >= origin and sample.model_bytes(group) <= base_model_bytes + 16 * MIB:
            back = sample.t - origin
            break
    # A drop is counted when its pages are released: after the episode's end, before the harness's.
    tail = [s for s in samples if start_t <= s.t < settle_t] or window
    drops = (tail[-1].drops - tail[0].drops) if tail else 0
    kills = (tail[-1].oom_kills - tail[0].oom_kills) if tail else 0
    return Episode(moment=moment, grew_bytes=grew, crossed=crossing is not None, under_s=under,
                   memory_back_s=back, min_headroom_bytes=verdict.min_headroom_bytes,
                   drops=drops, oom_kills=kills, kept=verdict.kept and kills == 0)


def run_machine(scenario_name: str, repetitions: int, results: Path,
                moments: tuple = MOMENTS, drop_caches: str = "auto") -> MachineResult:
    """All moments of growth, repetitions times, on one machine; judged by the referee."""
    import docker

    from shadowhound_llm_bench.sim.launcher import start_container_simulator
    from shadowhound_llm_bench.sim.machine_host import STATE_NAME
    from shadowhound_llm_bench.sim.ros_load import start_ros_load
    from shadowhound_llm_bench.sim.scenario import load_scenario

    scenario = load_scenario(scenario_name)
    docker_client = docker.from_env(timeout=60)
    name = f"robot-wins-{scenario_name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    sim = start_container_simulator(
        docker_client=docker_client, name=name, scenario=scenario_name, port=0,
        mem_limit_bytes=scenario.container_limit_physical_bytes or None, ready_timeout_s=60.0)
    machine = sim.machine
    ros = nav2 = referee = guard = client = backend = None
    out = results / f"referee-{scenario_name}.jsonl"
    try:
        ros = start_ros_load(scenario=scenario_name, machine=machine)
        nav2 = GrowingNav2(machine)
        group = sim.container.id
        referee = Referee(str(out), Watch(
            machine_cgroup=machine.cgroup_dir,
            driver_state=os.path.join(machine.machine_dir, STATE_NAME)), period_s=PERIOD_S)
        guard, client, backend, headroom = _product(sim, scenario, docker_client, results,
                                                    drop_caches)
        time.sleep(0.5)
        idle = headroom.sample()
        if len(idle.processes) < len(scenario.ros_nodes):
            raise RuntimeError(f"the product's ROS scan found {len(idle.processes)} of "
                               f"{len(scenario.ros_nodes) + 1} ROS processes")
        # The promise judged: ROS keeps the room the product's own reserve holds for it now.
        reserve = max(64 * MIB, idle.reserve_bytes - idle.live_bytes)
        label = scenario_name + (f" (drop_caches {drop_caches})" if drop_caches != "auto" else "")
        result = MachineResult(scenario=label, reserve_bytes=reserve)
        _settle(sim, client, nav2, referee, group)
        idle_sample = _latest(referee)
        base = idle_sample.model_bytes(group)
        # Nav2 grows by what would leave ROS half its reserve short once the model is loaded:
        # the product must give the model's memory back for the robot to keep its reserve.
        loaded = _model_truth(client, referee, group) - base
        grew = max(32 * MIB, idle_sample.allocatable_bytes - loaded - reserve // 2)
        result.notes.append(f"{MODEL} holds {loaded / MIB:.0f} MiB (referee); Nav2 grows by "
                            f"{grew / MIB:.0f} MiB each time")
        _settle(sim, client, nav2, referee, group)
        for rep in range(repetitions):
            for moment in moments:
                thread = _start_moment(moment, sim, client, guard, referee, group)
                start_t = referee.mark(f"{moment} {rep} growth")
                if not nav2.grow(grew):
                    result.notes.append(f"{moment} {rep}: Nav2 died growing (kernel OOM)")
                    nav2.stop()
                    nav2 = GrowingNav2(machine)
                _until(referee, lambda s: s.allocatable_bytes >= reserve and
                       s.model_bytes(group) <= base + 16 * MIB, 20.0)
                end_t = referee.mark(f"{moment} {rep} end")
                if thread is not None:
                    thread.join(30)
                settle_t = _settle(sim, client, nav2, referee, group)
                result.episodes.append(_judge(
                    moment, read_samples(str(out)), start_t=start_t, end_t=end_t,
                    settle_t=settle_t, reserve=reserve, grew=grew, group=group,
                    base_model_bytes=base))
            print(f"  {scenario_name}: repetition {rep + 1}/{repetitions} done", flush=True)
        return result
    finally:
        for closing in (guard, client, backend, referee, nav2, ros):
            if closing is not None:
                _quietly(getattr(closing, "close", None) or getattr(closing, "stop"))
        sim.remove()
        docker_client.close()
