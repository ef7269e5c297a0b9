"""Measurements behind benchmarks/seed_table.py: one configuration, node cost, sampling."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

from memory_columns import MemoryColumns, memory_columns, memory_source_settings_for
from memory_policy_numbers import SEED_MODELS
from seed_table_oracle import ServerTruth, true_footprints
from seed_table_referee import ConfigurationReferee

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.ros_processes import RosProcessScan, make_ros_process_scanner
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState, MemoryReading
from shadowhound_llm_bench.core.decider.policy_settings import PolicySettings, preset_settings
from shadowhound_llm_bench.core.runs.progress import Phase, ProgressEvent
from shadowhound_llm_bench.core.memory.ros_reserve import RosReserveSettings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import GIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard_api import DecisionRecord
from shadowhound_llm_bench.engine.ros_headroom import RosHeadroom
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import LOG_NAME, read_records
from shadowhound_llm_bench.sim.launcher import start_container_simulator
from shadowhound_llm_bench.sim.machine import SimMachine
from shadowhound_llm_bench.sim.ros_load import RosLoad

REPO = Path(__file__).resolve().parent.parent
CONTAINER_PREFIX = "seedtable"
BENCH_DOMAIN_ID = "79"
Progress = Callable[[str], None]
# Guard actions whose DecisionRecord.duration_s is time spent on management (restarts are
# taken from the guard's restart_durations_s: some restart decisions carry no duration).
TIMED_ACTIONS = ("unload", "unload_others", "wait", "drop_caches")


# ---------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Config:
    """One column of the seed's matrix: a preset plus the overrides that make it that column."""

    key: str
    label: str
    preset: str
    overrides: Dict[str, Any] = field(default_factory=dict)
    seed_row: bool = True  # one of the seed's four configurations
    short: str = ""  # chart label

    def settings(self, scenario: Any, *, seed_recovery: bool) -> PolicySettings:
        """Policy settings at the scenario's scale, in the seed's model order."""
        params = scenario.node_parameters
        changes: Dict[str, Any] = dict(
            order="given", num_ctx=int(params["num_ctx"]),
            safety_buffer_bytes=int(params["safety_buffer_bytes"]),
            sample_period_s=0.1, unload_deadline_s=10.0, restart_deadline_s=30.0,
            memory_wait_s=1.0)
        changes.update(self.overrides)
        if self.seed_row and not seed_recovery:
            # As the seed's script: no restart or retry after a failed load, no model skipped
            # on prediction, no page-cache drop (`keep_alive: 0` was its only unload) and no
            # pressure watchdog stopping a model (200 % of the budget, the highest allowed).
            changes.update(load_retries=0, restart_on_load_failure=False,
                           skip_models_that_never_fit=False, preempt_on_breach=False,
                           drop_caches="never", pressure_abort_percent=200.0)
        if self.overrides:
            changes["preset"] = "custom"
        return preset_settings(self.preset, memory_scale=scenario.memory_scale, **changes)


CONFIGS: Tuple[Config, ...] = (
    Config("none", "No management (fast)", "fast", short="none\n(fast)"),
    Config("unload", "Unload only", "default",
           dict(restart_before_models_over_bytes=None, make_room_when_needed=False,
                restart_when_cleanup_fails=False), short="unload\nonly"),
    Config("restart_large", "Restart large only", "default",
           dict(unload_after_each_model=False, make_room_when_needed=False,
                restart_when_cleanup_fails=False), short="restart\nlarge only"),
    Config("full", "Full management (default)", "default", short="full\n(default)"),
    Config("adaptive", "Adaptive", "adaptive", seed_row=False, short="adaptive"),
)


# ---------------------------------------------------------------------------- ROS headroom
class LoadOnlyScanner:
    """The real psutil scanner, keeping only the scenario's stand-in ROS processes."""

    def __init__(self, settings: RosReserveSettings, pids: Sequence[int]) -> None:
        self._scanner = make_ros_process_scanner(settings)
        self._pids = frozenset(pids)

    def scan(self) -> RosProcessScan:
        """Scan the process table; other ROS processes on this machine are not the robot."""
        scan = self._scanner.scan()
        return RosProcessScan(processes=tuple(p for p in scan.processes if p.pid in self._pids),
                              scan_s=scan.scan_s)


def start_headroom(scenario: Any, ros_load: RosLoad) -> RosHeadroom:
    """Live ROS headroom over the stand-in processes; reserve settings scaled like the machine."""
    scale = scenario.memory_scale
    defaults = RosReserveSettings()
    names = [re.escape(name) for name in ros_load.pids]
    settings = RosReserveSettings(
        floor_bytes=int(defaults.floor_bytes * scale), window_s=defaults.window_s,
        growth_factor=defaults.growth_factor, margin_bytes=int(defaults.margin_bytes * scale),
        include_patterns=(r"\b(" + "|".join(names) + r")\b",))
    headroom = RosHeadroom(scanner=LoadOnlyScanner(settings, list(ros_load.pids.values())),
                           settings=settings)
    first = headroom.sample()
    if len(first.processes) != len(ros_load.pids):
        raise RuntimeError(f"the ROS scan found {len(first.processes)} of "
                           f"{len(ros_load.pids)} stand-in processes")
    return headroom


# ---------------------------------------------------------------------------- one configuration
@dataclass(frozen=True)
class TableRow:
    """One configuration's numbers (bytes are this machine's, 1/64 of Thor's)."""

    NUMBERS: ClassVar[Tuple[str, ...]] = (
        "failed_loads", "models_failed", "total_s", "management_s", "management_share",
        "peak_container_bytes", "peak_host_used_bytes", "min_ros_headroom_bytes",
        "reserve_breaches", "over_budget_readings", "min_budget_margin_bytes", "unloads",
        "restarts", "refusals", "eof_failures", "kernel_oom_kills", "min_memfree_bytes",
        "peak_machine_used_bytes", "pool_end_bytes", "physics_failures", "decision_stops",
        "server_refusals", "server_runner_deaths", "budget_bytes", "referee_cleanup_verdicts",
        "referee_wrong_cleanups")

    key: str
    label: str
    short: str
    models: int
    failed_loads: float
    models_failed: float
    total_s: float
    management_s: float
    management_share: float
    peak_container_bytes: float
    peak_host_used_bytes: float
    min_ros_headroom_bytes: float
    reserve_breaches: float
    over_budget_readings: float
    min_budget_margin_bytes: float
    unloads: float
    restarts: float
    refusals: float = 0  # loads Ollama refused: "model requires more system memory ..."
    eof_failures: float = 0  # loads whose runner died: "do load request: ... EOF"
    kernel_oom_kills: float = 0  # the kernel's, anywhere in the machine's memory cgroup
    min_memfree_bytes: float = 0  # the simulated machine's meminfo (ground truth)
    peak_machine_used_bytes: float = 0  # MemTotal - MemAvailable, the machine's meminfo
    pool_end_bytes: float = 0  # device memory the GPU driver still holds at the end
    # Models lost to physics (their load or test failed: refusal, runner death, OOM kill) and
    # to the product's own decisions (skip, pressure stop, preemption).
    physics_failures: float = 0
    decision_stops: float = 0
    server_refusals: float = 0  # the simulator's own counters (server truth), all instances
    server_runner_deaths: float = 0
    budget_bytes: float = 0  # the model budget the guard worked with (median of its readings)
    referee_cleanup_verdicts: float = 0  # the product's cleanup verdicts the referee judged
    referee_wrong_cleanups: float = 0  # ... and found wrong against the memory really held
    referee_cleanup_note: str = ""
    unload_durations_s: Tuple[float, ...] = ()  # each unload / drop / restart it carried out
    drop_durations_s: Tuple[float, ...] = ()
    restart_durations_s: Tuple[float, ...] = ()
    management_note: str = ""
    failure_note: str = ""
    note: str = ""
    repetitions: int = 1
    memory: Optional[MemoryColumns] = None  # memory sources judged against the ground truth

    def replace(self, **changes: Any) -> "TableRow":
        return dataclasses.replace(self, **changes)


def ros_headroom_bytes(reading: MemoryReading) -> int:
    """Host memory still available once the unused part of the ROS reserve is held back."""
    unused_reserve = max(0, reading.ros_reserve_bytes - reading.ros_live_bytes)
    return reading.host_available_bytes - unused_reserve


def management_seconds(decisions: Sequence[DecisionRecord],
                       restart_durations_s: Sequence[float]) -> Tuple[float, str]:
    """Seconds spent unloading, restarting and waiting, and what they were."""
    parts = {action: [d.duration_s for d in decisions if d.action == action]
             for action in TIMED_ACTIONS}
    total = sum(sum(v) for v in parts.values()) + sum(restart_durations_s)
    words = [f"{len(v)} {a.replace('_', ' ')} {sum(v):.2f} s" for a, v in parts.items() if v]
    if restart_durations_s:
        words.append(f"{len(restart_durations_s)} restart(s) {sum(restart_durations_s):.2f} s")
    return total, ", ".join(words) or "nothing"


def _progress_sink(progress: Progress, label: str) -> Callable[[ProgressEvent], None]:
    last: List[Tuple[str, str]] = []

    def sink(event: ProgressEvent) -> None:
        key = (event.model, event.phase.value if isinstance(event.phase, Phase)
               else str(event.phase))
        if event.phase in (Phase.RESTARTING, Phase.UNLOADING, Phase.WAITING_FOR_MEMORY) \
                and (not last or last[-1] != key):
            progress(f"  {label}: {event.status[:110]}")
        elif event.model and (not last or last[-1][0] != event.model):
            progress(f"  {label}: {event.model} ...")
        last[:] = [key]
    return sink


class MachineWatch:
    """The simulated machine's ground truth during one configuration, sampled at 10 Hz."""

    def __init__(self, machine: SimMachine) -> None:
        self.machine = machine
        self.kills_before = oom_kills(machine.cgroup_dir)
        self.min_memfree_bytes = machine.total_bytes
        self.peak_used_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="machine-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                meminfo = self.machine.meminfo_bytes()
            except (OSError, ValueError):
                continue
            self.min_memfree_bytes = min(self.min_memfree_bytes, meminfo["MemFree"])
            self.peak_used_bytes = max(self.peak_used_bytes,
                                       meminfo["MemTotal"] - meminfo["MemAvailable"])

    def stop(self) -> Dict[str, float]:
        """End sampling; return the numbers of the row."""
        self._stop.set()
        self._thread.join(timeout=2)
        return {"kernel_oom_kills": oom_kills(self.machine.cgroup_dir) - self.kills_before,
                "min_memfree_bytes": self.min_memfree_bytes,
                "peak_machine_used_bytes": self.peak_used_bytes,
                "pool_end_bytes": self.machine.state().get("pool_bytes", 0)}


def oom_kills(cgroup_dir: str) -> int:
    """OOM kills the kernel counted in a memory cgroup tree (v1: counted where the victim was)."""
    total = 0
    for root, _, files in os.walk(cgroup_dir) if cgroup_dir else ():
        if "memory.oom_control" in files:
            try:
                with open(os.path.join(root, "memory.oom_control"), encoding="ascii") as handle:
                    total += int(dict(line.split() for line in handle).get("oom_kill", 0))
            except (OSError, ValueError):
                continue
    return total


def run_configuration(config: Config, *, scenario: Any, docker_client: Any,
                      headroom: RosHeadroom, results_root: Path, seed_recovery: bool,
                      test_repetitions: int, num_predict: int, deadline_s: float,
                      progress: Progress, machine: SimMachine,
                      management_costs_path: str = "") -> TableRow:
    """
    Run the seed's five models under one configuration on a fresh container.

    The container runs in `machine` (its ROS load standing), whose caches and driver pool are
    dropped first: every configuration starts from a freshly booted machine.
    management_costs_path: unload and restart durations shared by the configurations, as a
    robot keeps them between runs (the cost-aware adaptive policy weighs them); "" for none.
    """
    params = scenario.node_parameters
    name = f"{CONTAINER_PREFIX}-{config.key.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    machine.drop_caches()
    sim = start_container_simulator(docker_client=docker_client, name=name,
                                    scenario=scenario.name, port=0, machine=machine)
    watch = MachineWatch(machine)
    truth = ServerTruth(sim.base_url)
    referee = ConfigurationReferee(machine, results_root / f"{name}.referee.jsonl")
    backend = guard = timer = None
    try:
        backend = DockerContainer(name=name, ollama_base_url=sim.base_url,
                                  docker_client=docker_client)
        client = OllamaClient(base_url=sim.base_url, request_timeout_s=60)
        settings = config.settings(scenario, seed_recovery=seed_recovery)
        # A simulated machine with its own meminfo / nvidia-smi / drop_caches is read as the
        # product reads a robot; older simulators derive the host from a configured size.
        memory = memory_source_settings_for(sim)
        host = None if memory is not None else SimulatedHost(
            total_bytes=int(params["host_total_bytes"]),
            system_reserve_bytes=int(params["system_reserve_bytes"]))
        guard = build_memory_guard(
            settings=settings, client=client, backend=backend, host=host,
            headroom=headroom, management_costs_path=management_costs_path,
            memory_sources=memory, memory_scale=scenario.memory_scale)
        options = RunOptions(num_ctx=int(params["num_ctx"]), num_predict=num_predict,
                             repetitions=test_repetitions, warmup=False, pull_missing=False,
                             request_deadline_s=60, load_deadline_s=60)
        runner = BenchmarkRunner(client=client, guard=guard, options=options,
                                 suite=load_suite(str(params.get("suite", "robot_mission"))),
                                 results_root=results_root, run_name=config.key,
                                 preset=settings.preset,
                                 on_progress=_progress_sink(progress, config.key))
        timer = threading.Timer(deadline_s, runner.cancel.set)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        outcome = runner.run(SEED_MODELS)
        total_s = time.monotonic() - started
        judged = referee.judge(outcome, true_footprints(scenario, SEED_MODELS,
                                                        int(params["num_ctx"])))
        # Cleanup verdicts are judged by the referee (memory really held), not the leak list.
        memory = dataclasses.replace(
            memory_columns(guard, scenario, num_ctx=int(params["num_ctx"])),
            cleanup_verdicts=int(judged["referee_cleanup_verdicts"]),
            wrong_cleanup_verdicts=int(judged["referee_wrong_cleanups"]),
            wrong_note=str(judged["referee_cleanup_note"]))
        return _row(config, outcome, guard, total_s).replace(
            memory=memory, **watch.stop(), **truth.stop(), **judged)
    finally:
        watch.stop()
        truth.stop()
        referee.stop()
        if timer is not None:
            timer.cancel()
        if guard is not None:
            guard.close()
        if backend is not None:
            backend.close()
        sim.remove()


def _row(config: Config, outcome: Any, guard: Any, total_s: float) -> TableRow:
    records, _ = read_records(outcome.run_dir / LOG_NAME)
    failed = [r for r in records if r.get("type") == "load" and not r.get("ok")]
    models = outcome.summary.models if outcome.summary else []
    lost = [m for m in models if m.status != "ok"]
    timeline = [r for r in guard.timeline() if r.host_total_bytes > 0]
    running = [r for r in timeline if r.container.state == ContainerState.RUNNING]
    decisions = guard.decisions()
    management_s, management_note = management_seconds(decisions, guard.restart_durations_s)
    margins = [r.model_budget_bytes - r.memory_in_use_bytes for r in running]
    headrooms = [ros_headroom_bytes(r) for r in timeline]
    guard_records = guard.records()
    failure_note = "; ".join(f"{m.model}: {m.status} ({m.reason[:70]}...)" for m in lost)
    note = ""
    if failed or lost:
        note = (f"failed loads: {', '.join(str(r.get('model')) for r in failed) or 'none'}"
                + (f"; lost: {failure_note}" if lost else ""))
    if outcome.status == "canceled":
        note += "; the run hit its deadline and was canceled"
    errors = [str(r.get("error", "")) for r in failed]
    by_decision = ("skipped", "aborted", "preempted")
    budgets = sorted(r.model_budget_bytes for r in running) or [0]
    return TableRow(
        physics_failures=sum(1 for m in lost if m.status not in by_decision),
        decision_stops=sum(1 for m in lost if m.status in by_decision),
        budget_bytes=budgets[len(budgets) // 2],
        unload_durations_s=tuple(d.duration_s for d in decisions
                                 if d.action in ("unload", "unload_others") and d.duration_s),
        drop_durations_s=tuple(d.duration_s for d in decisions
                               if d.action == "drop_caches" and d.duration_s),
        restart_durations_s=tuple(guard.restart_durations_s),
        refusals=sum(1 for e in errors if "requires more system memory" in e),
        eof_failures=sum(1 for e in errors if "EOF" in e),
        key=config.key, label=config.label, short=config.short, models=len(SEED_MODELS),
        failed_loads=len(failed), models_failed=len(lost) + (len(SEED_MODELS) - len(models)),
        total_s=total_s, management_s=management_s,
        management_share=management_s / total_s if total_s > 0 else 0.0,
        peak_container_bytes=max((r.container.working_set_bytes for r in timeline), default=0),
        peak_host_used_bytes=max((r.host_total_bytes - r.host_available_bytes
                                  for r in timeline), default=0),
        min_ros_headroom_bytes=min(headrooms, default=0),
        reserve_breaches=sum(1 for h in headrooms if h < 0),
        over_budget_readings=sum(1 for m in margins if m < 0),
        min_budget_margin_bytes=min(margins, default=0),
        unloads=sum(r.unloads for r in guard_records),
        restarts=len(guard.restart_durations_s),
        management_note=management_note, failure_note=failure_note, note=note)


__all__ = ["CONFIGS", "Config", "GIB", "TableRow", "run_configuration", "start_headroom"]
