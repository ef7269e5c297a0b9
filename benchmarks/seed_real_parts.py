"""
One configuration of the seed's table on the real Ollama in a memory-limited Docker container.

The product runs as it would on a robot (BenchmarkRunner, memory guard, Docker backend); the
verdicts come from what it never reads: the container's memory cgroup files and Docker's own OOM
events, read here, and the server's own replies (load errors, /api/ps), polled here.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import httpx

from seed_table_parts import Config, _progress_sink, management_seconds

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import GIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import LOG_NAME, read_records

CONTAINER_PREFIX = "seedreal"
KILL_TEXT = "process has terminated: signal: killed"  # both releases' runner-killed text
REFUSAL_TEXT = "requires more system memory"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Experiment:
    """What every configuration of one table shares."""

    dist: Any  # real_ollama.OllamaDist
    models: Tuple[str, ...]
    limit_bytes: int
    memory_scale: float
    num_ctx: int = 4096
    num_predict: int = 16
    repetitions: int = 1
    deadline_s: float = 600.0
    suite: str = str(Path(__file__).resolve().parent / "seed_real_suite.yaml")


# ---------------------------------------------------------------------------- ground truth
class CgroupTruth:
    """The container's memory cgroup (v1) and the server's /api/ps, sampled at 20 Hz and 4 Hz."""

    def __init__(self, *, container_id: str, base_url: str,
                 cgroup_root: str = "/sys/fs/cgroup/memory/docker") -> None:
        self.folder = Path(cgroup_root) / container_id
        self.base_url = base_url
        self.peak_working_set_bytes = 0
        self.peak_max_usage_bytes = 0
        self.idle_working_set_bytes = 0
        self.oom_kills = 0
        self.failcnt = 0
        self.footprints: Dict[str, int] = {}  # largest /api/ps size per model
        self.most_loaded = 0
        self._last = {"oom_kill": 0, "failcnt": 0}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._cgroup_loop, daemon=True),
                         threading.Thread(target=self._ps_loop, daemon=True)]
        self._sample_cgroup()
        self.idle_working_set_bytes = self.peak_working_set_bytes
        for thread in self._threads:
            thread.start()

    def _read(self, name: str) -> str:
        return (self.folder / name).read_text(encoding="ascii")

    def _counter(self, key: str, value: int) -> None:
        # A restarted container gets a fresh cgroup: its counters start again at zero.
        last = self._last[key]
        grown = value - last if value >= last else value
        self._last[key] = value
        if key == "oom_kill":
            self.oom_kills += grown
        else:
            self.failcnt += grown

    def _sample_cgroup(self) -> None:
        try:
            usage = int(self._read("memory.usage_in_bytes"))
            stat = dict(line.split() for line in self._read("memory.stat").splitlines())
            oom = dict(line.split() for line in self._read("memory.oom_control").splitlines())
            max_usage = int(self._read("memory.max_usage_in_bytes"))
            failcnt = int(self._read("memory.failcnt"))
        except (OSError, ValueError):
            return  # between a restart's old and new cgroup
        working_set = usage - int(stat.get("total_inactive_file", 0))
        self.peak_working_set_bytes = max(self.peak_working_set_bytes, working_set)
        self.peak_max_usage_bytes = max(self.peak_max_usage_bytes, max_usage)
        self._counter("oom_kill", int(oom.get("oom_kill", 0)))
        self._counter("failcnt", failcnt)

    def _cgroup_loop(self) -> None:
        while not self._stop.wait(0.05):
            self._sample_cgroup()

    def _ps_loop(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=2.0) as http:
            while not self._stop.wait(0.25):
                try:
                    models = http.get("/api/ps").json().get("models") or []
                except (httpx.HTTPError, ValueError):
                    continue
                self.most_loaded = max(self.most_loaded, len(models))
                for entry in models:
                    name, size = str(entry.get("name")), int(entry.get("size") or 0)
                    self.footprints[name] = max(self.footprints.get(name, 0), size)

    def stop(self) -> None:
        """End sampling (one last cgroup reading first)."""
        self._sample_cgroup()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)


def docker_oom_events(docker_client: Any, container_id: str, since: float) -> int:
    """Count the engine's `oom` events of the container since a wall-clock time."""
    events = docker_client.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True,
                                  filters={"container": container_id, "event": "oom"})
    return sum(1 for _ in events)


# ---------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class RealRow:
    """One configuration's numbers on the real server."""

    NUMBERS: ClassVar[Tuple[str, ...]] = (
        "kill_failures", "refusals", "other_load_failures", "skips", "pressure_stops",
        "models_failed", "other_model_failures", "total_s", "management_s",
        "peak_working_set_bytes", "peak_max_usage_bytes", "cgroup_oom_kills",
        "docker_oom_events", "failcnt", "most_loaded")

    key: str
    label: str
    models: int
    kill_failures: int  # physics: HTTP 500 "... process has terminated: signal: killed"
    refusals: int  # physics: the server refused ("requires more system memory")
    other_load_failures: int
    skips: int  # product decision: a model skipped by the policy
    pressure_stops: int  # product decision: a model stopped under memory pressure
    models_failed: int  # every model that did not end ok
    other_model_failures: int  # ended not ok for a reason that is not memory (e.g. the stream)
    total_s: float
    management_s: float
    peak_working_set_bytes: int
    peak_max_usage_bytes: int
    cgroup_oom_kills: int
    docker_oom_events: int
    failcnt: int
    most_loaded: int
    limit_bytes: int
    footprints: Dict[str, int] = field(default_factory=dict)
    idle_bytes: int = 0
    unloads: Dict[str, List[float]] = field(default_factory=dict)
    restarts_s: List[float] = field(default_factory=list)
    kill_texts: List[str] = field(default_factory=list)
    management_note: str = ""
    note: str = ""

    @property
    def physics_failures(self) -> int:
        """Count the loads the server or the kernel failed."""
        return self.kill_failures + self.refusals

    @property
    def product_failures(self) -> int:
        """Models the product decided not to finish."""
        return self.skips + self.pressure_stops

    def as_dict(self) -> Dict[str, Any]:
        """Plain values for the JSON output."""
        return {**dataclasses.asdict(self), "physics_failures": self.physics_failures,
                "product_failures": self.product_failures}


def unload_times(decisions: Sequence[Any]) -> Dict[str, List[float]]:
    """Seconds per model unloaded: an unload of several models at once is shared among them."""
    unloads: Dict[str, List[float]] = {}
    for d in decisions:
        if d.duration_s <= 0:
            continue
        names = [d.model] if d.action == "unload" else []
        match = re.search(r": unload (.+?);", d.reason) if d.action == "unload_others" else None
        if match:
            names = [name.strip() for name in match.group(1).split(",") if name.strip()]
        for name in names:
            unloads.setdefault(name, []).append(d.duration_s / len(names))
    return unloads


def _row(config: Config, outcome: Any, guard: Any, total_s: float, truth: CgroupTruth,
         oom_events: int, exp: Experiment) -> RealRow:
    records, _ = read_records(outcome.run_dir / LOG_NAME)
    failed = [r for r in records if r.get("type") == "load" and not r.get("ok")]
    errors = [str(r.get("error", "")) for r in failed]
    kills = [e for e in errors if KILL_TEXT in e]
    refusals = [e for e in errors if REFUSAL_TEXT in e]
    summary_models = outcome.summary.models if outcome.summary else []
    lost = [m for m in summary_models if m.status != "ok"]
    skipped = [m for m in lost if m.status == "skipped"]
    stopped = [m for m in lost if m.status == "aborted" and "memory pressure" in m.reason]
    memory_lost = [m for m in lost if KILL_TEXT in m.reason or REFUSAL_TEXT in m.reason]
    other = [m for m in lost if m not in skipped and m not in stopped and m not in memory_lost]
    decisions = guard.decisions()
    management_s, note = management_seconds(decisions, guard.restart_durations_s)
    unloads = unload_times(decisions)
    words = [f"{m.model}: {m.status} ({m.reason[:90]})" for m in lost]
    if outcome.status == "canceled":
        words.append("the run hit its deadline and was canceled")
    return RealRow(
        key=config.key, label=config.label, models=len(exp.models),
        kill_failures=len(kills), refusals=len(refusals),
        other_load_failures=len(errors) - len(kills) - len(refusals),
        skips=len(skipped), pressure_stops=len(stopped),
        models_failed=len(lost) + len(exp.models) - len(summary_models),
        other_model_failures=len(other), total_s=total_s, management_s=management_s,
        peak_working_set_bytes=truth.peak_working_set_bytes,
        peak_max_usage_bytes=truth.peak_max_usage_bytes, cgroup_oom_kills=truth.oom_kills,
        docker_oom_events=oom_events, failcnt=truth.failcnt, most_loaded=truth.most_loaded,
        limit_bytes=exp.limit_bytes, footprints=dict(truth.footprints),
        idle_bytes=truth.idle_working_set_bytes, unloads=unloads,
        restarts_s=list(guard.restart_durations_s), kill_texts=sorted(set(kills)),
        management_note=note, note="; ".join(words))


def policy_settings(config: Config, exp: Experiment) -> Any:
    """
    Return the configuration's policy at this scale (the seed rows without recovery).

    The real server reports real sizes (memory_scale 1); the seed's byte thresholds (2 GiB
    safety buffer, restart before models over 40 GB) shrink with the models.
    """
    scale = SimpleNamespace(memory_scale=1.0, node_parameters={
        "num_ctx": exp.num_ctx, "safety_buffer_bytes": int(2 * GIB * exp.memory_scale)})
    settings = config.settings(scale, seed_recovery=False)
    threshold = settings.restart_before_models_over_bytes
    if threshold:
        settings = settings.replace(
            restart_before_models_over_bytes=int(threshold * exp.memory_scale))
    return settings


def run_configuration(config: Config, *, exp: Experiment, docker_client: Any,
                      results_root: Path, progress: Progress,
                      management_costs_path: str = "") -> RealRow:
    """Run the models under one configuration in a fresh real-Ollama container."""
    name = f"{CONTAINER_PREFIX}-{config.key.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    since = time.time()
    server = real_ollama.start_container_server(docker_client, exp.dist, name=name,
                                                mem_limit_bytes=exp.limit_bytes)
    truth = backend = guard = timer = None
    try:
        truth = CgroupTruth(container_id=server.container.id, base_url=server.base_url)
        backend = DockerContainer(name=name, ollama_base_url=server.base_url,
                                  docker_client=docker_client)
        client = OllamaClient(base_url=server.base_url, request_timeout_s=60)
        settings = policy_settings(config, exp)
        guard = build_memory_guard(settings=settings, client=client, backend=backend,
                                   management_costs_path=management_costs_path)
        options = RunOptions(num_ctx=exp.num_ctx, num_predict=exp.num_predict,
                             repetitions=exp.repetitions, warmup=False, pull_missing=False,
                             request_deadline_s=120, load_deadline_s=120)
        runner = BenchmarkRunner(client=client, guard=guard, options=options,
                                 suite=load_suite(exp.suite), results_root=results_root,
                                 run_name=f"v{exp.dist.version.replace('.', '_')}-{config.key}",
                                 preset=settings.preset,
                                 on_progress=_progress_sink(progress, config.key))
        timer = threading.Timer(exp.deadline_s, runner.cancel.set)
        timer.daemon = True
        timer.start()
        started = time.monotonic()
        outcome = runner.run(list(exp.models))
        total_s = time.monotonic() - started
        truth.stop()
        events = docker_oom_events(docker_client, server.container.id, since)
        return _row(config, outcome, guard, total_s, truth, events, exp)
    finally:
        if truth is not None:
            truth.stop()
        if timer is not None:
            timer.cancel()
        if guard is not None:
            guard.close()
        if backend is not None:
            backend.close()
        server.stop()


def measure_restart_s(docker_client: Any, dist: Any, *, limit_bytes: int) -> float:
    """Time one restart of an idle server's container until /api/version answers again."""
    name = f"{CONTAINER_PREFIX}-restart-{uuid.uuid4().hex[:6]}"
    server = real_ollama.start_container_server(docker_client, dist, name=name,
                                                mem_limit_bytes=limit_bytes)
    try:
        started = time.monotonic()
        server.container.restart(timeout=10)
        real_ollama.server.wait_until_answering(server.base_url, deadline_s=60.0)
        return time.monotonic() - started
    finally:
        server.stop()


def footprints_of(rows: Sequence[RealRow]) -> Dict[str, int]:
    """Largest /api/ps size of each model over every configuration."""
    merged: Dict[str, int] = {}
    for row in rows:
        for model, size in row.footprints.items():
            merged[model] = max(merged.get(model, 0), size)
    return merged


def unloads_of(rows: Sequence[RealRow]) -> Dict[str, List[float]]:
    """Every measured unload duration per model over every configuration."""
    merged: Dict[str, List[float]] = {}
    for row in rows:
        for model, durations in row.unloads.items():
            merged.setdefault(model, []).extend(durations)
    return merged


def idle_bytes_of(rows: Sequence[RealRow]) -> Optional[int]:
    """Return the server's own working set with nothing loaded (the largest start seen)."""
    values = [r.idle_bytes for r in rows if r.idle_bytes > 0]
    return max(values) if values else None
