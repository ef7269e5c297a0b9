"""
The preemption watchdog: on every memory sample, asks the policy and frees the robot's memory.

It listens to the MemoryMonitor. When the policy says PREEMPT it cuts the load or stream in
flight, sends the unloads the policy names (keep_alive 0) and watches the samples until the
models' memory came back; when the policy says RESTART (memory keeps rising: a load Ollama goes
on with, or nothing released in time) or DROP_CACHES, the guard's decider carries it out
(engine/guard_deciding.py). Every episode is recorded with its numbers and
timings (PreemptionRecord) in the model's memory record and in the decisions.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..adapters.ollama_client import OllamaError
from ..core.decider.memory_back import robot_has_memory_back
from ..core.memory.memory_reading import MemoryReading
from ..core.decider.decision import Action, Decision
from ..core.decider.preemption import model_memory_bytes, released, ros_headroom_bytes
from ..core.runs.progress import Phase

_LOG = logging.getLogger(__name__)

# Requests of these kinds are cut when the robot needs the memory.
PREEMPTIBLE_KINDS = ("load", "stream")
# Deadlines of the calls an episode makes: it must never wait on a hung server for long.
EPISODE_CALL_DEADLINE_S = 2.0
# How often an episode samples memory while it waits for the release.
EPISODE_POLL_S = 0.02
# How long the host reading may take to show the pages a cache drop released.
DROP_SETTLE_S = 1.0


@dataclass
class PreemptionRecord:
    """One preemption: why (numbers at the breach), what was done, and how long each step took."""

    models: List[str]
    during: str  # load | stream | idle (a cached model)
    reason: str
    breach_stamp_s: float  # wall clock of the sample that showed the breach
    working_set_bytes: int
    model_budget_bytes: int
    pressure_percent: float
    ros_headroom_bytes: int
    ros_live_bytes: int
    ros_reserve_bytes: int
    held_bytes: int  # models' memory at the breach
    cut_requests: int = 0
    cut_after_s: float = 0.0  # from the breach sample to the requests cut
    unload_sent_after_s: float = 0.0
    released_after_s: Optional[float] = None  # to the first sample with the memory back
    peak_held_bytes: int = 0
    restarted: bool = False
    restart_reason: str = ""
    min_ros_headroom_bytes: int = 0
    below_reserve_s: float = 0.0  # time with the ROS headroom under zero during the episode
    outcome: str = ""
    steps: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """Plain values for the reports."""
        return asdict(self)


class Preemptor:
    """Watches every reading of the guard's monitor; one preemption episode at a time."""

    def __init__(self, guard: Any) -> None:
        self.guard = guard
        self.policy = guard.policy
        self.monitor = guard.monitor
        self.client = guard.client
        self._lock = threading.Lock()
        self._episode: Optional[threading.Thread] = None
        self._current: Optional[PreemptionRecord] = None
        self._last_stamp_s: Optional[float] = None
        self._records: List[PreemptionRecord] = []
        self._pending_models: List[str] = []  # preempted, not yet taken by the runner
        self._baseline_bytes: Optional[int] = None
        self._closed = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Preemptor":
        """Listen to every memory sample from now on."""
        latest = self.monitor.latest()
        if latest is not None:
            self._baseline_bytes = latest.memory_in_use_bytes
        self.monitor.add_listener(self._on_reading)
        return self

    def stop(self) -> None:
        """Stop listening; an episode under way finishes its release."""
        self._closed.set()
        remove = getattr(self.monitor, "remove_listener", None)
        if remove is not None:
            remove(self._on_reading)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait for an episode under way to end; False when it is still running."""
        episode = self._episode
        if episode is None:
            return True
        episode.join(timeout_s)
        return not episode.is_alive()

    # ------------------------------------------------------------------ queries
    def records(self) -> List[PreemptionRecord]:
        """Every episode so far, oldest first."""
        with self._lock:
            return list(self._records)

    def take_preempted(self, model: str) -> Optional[PreemptionRecord]:
        """Return the episode that preempted this model, once (the runner ends the model on it)."""
        with self._lock:
            if model not in self._pending_models:
                return None
            self._pending_models.remove(model)
            for record in reversed(self._records):
                if model in record.models:
                    return record
        return None

    def active(self) -> bool:
        """Tell whether an episode runs now."""
        episode = self._episode
        return episode is not None and episode.is_alive()

    # ------------------------------------------------------------------ the watchdog
    def _empty_bytes(self) -> int:
        empty = self.guard.readings.empty_working_set_bytes
        if empty is None:
            empty = self._baseline_bytes or 0
        return int(empty)

    def _on_reading(self, reading: MemoryReading) -> None:
        """Look at every sample (sampler thread or the episode's own samples): keep it quick."""
        with self._lock:
            current = self._current
            if current is not None:
                self._observe(current, reading)
                return
            if self._closed.is_set():
                return
        in_flight = [r.model for r in self.client.in_flight()
                     if r.kind in PREEMPTIBLE_KINDS and r.model and r.cause is None]
        held = model_memory_bytes(reading, self._empty_bytes())
        decision = self.policy.on_sample(reading, held_bytes=held,
                                         in_flight=list(dict.fromkeys(in_flight)))
        if decision.action is not Action.PREEMPT:
            return
        with self._lock:
            if self._current is not None or self._closed.is_set():
                return
            kinds = {r.kind for r in self.client.in_flight() if r.kind in PREEMPTIBLE_KINDS}
            record = PreemptionRecord(
                models=list(decision.models_to_unload),
                during="load" if "load" in kinds else "stream" if kinds else "idle",
                reason=decision.reason, breach_stamp_s=reading.stamp_s,
                working_set_bytes=reading.memory_in_use_bytes,
                model_budget_bytes=reading.model_budget_bytes,
                pressure_percent=reading.pressure_percent,
                ros_headroom_bytes=ros_headroom_bytes(reading),
                ros_live_bytes=reading.ros_live_bytes,
                ros_reserve_bytes=reading.ros_reserve_bytes, held_bytes=held,
                peak_held_bytes=held, min_ros_headroom_bytes=ros_headroom_bytes(reading))
            self._current = record
            self._last_stamp_s = reading.stamp_s
            self._episode = threading.Thread(target=self._run_episode,
                                             args=(record, decision, reading),
                                             name="preemption", daemon=True)
            self._episode.start()

    def _observe(self, record: PreemptionRecord, reading: MemoryReading) -> None:
        """Track the ROS headroom and the models' peak during an episode (under the lock)."""
        headroom = ros_headroom_bytes(reading)
        if self._last_stamp_s is not None and reading.stamp_s > self._last_stamp_s:
            if record.min_ros_headroom_bytes < 0:
                record.below_reserve_s += reading.stamp_s - self._last_stamp_s
            self._last_stamp_s = reading.stamp_s
        record.min_ros_headroom_bytes = min(record.min_ros_headroom_bytes, headroom)
        record.peak_held_bytes = max(record.peak_held_bytes,
                                     model_memory_bytes(reading, self._empty_bytes()))

    # ------------------------------------------------------------------ one episode
    def _run_episode(self, record: PreemptionRecord, decision: Decision,
                     reading: MemoryReading) -> None:
        try:
            self._carry_out(record, decision, reading)
        except Exception as exc:  # the watchdog must survive anything one episode meets
            record.outcome = f"episode failed: {type(exc).__name__}: {exc}"
            _LOG.warning("preemption failed: %s", exc)
        finally:
            with self._lock:
                self._records.append(record)
                self._pending_models.extend(m for m in record.models
                                            if m not in self._pending_models)
                self._current = None
            self._remember(record)

    def _since_breach(self, record: PreemptionRecord) -> float:
        return time.time() - record.breach_stamp_s

    def _carry_out(self, record: PreemptionRecord, decision: Decision,
                   reading: MemoryReading) -> None:
        guard = self.guard
        model = record.models[0] if record.models else ""
        entry = guard.log.decision(model, decision, reading)
        record.cut_requests = self.client.interrupt(cause="preempted", reason=decision.reason,
                                                    kinds=PREEMPTIBLE_KINDS)
        record.cut_after_s = self._since_breach(record)
        record.steps.append(f"cut {record.cut_requests} request(s) at "
                            f"{record.cut_after_s:.3f} s")
        try:
            listed = [str(e.get("name") or e.get("model") or "")
                      for e in self.client.ps(deadline_s=EPISODE_CALL_DEADLINE_S)]
        except OllamaError as exc:
            listed = []
            record.steps.append(f"/api/ps did not answer: {exc}")
        unloads = self.policy.preemption_unloads(decision, listed)
        models = list(unloads.models_to_unload)
        record.models = models
        record.steps += guard.actions.send_unloads(models, EPISODE_CALL_DEADLINE_S,
                                                   one_by_one=True)
        record.unload_sent_after_s = self._since_breach(record)
        record.steps.append(f"unload of {', '.join(models) or 'nothing listed'} sent at "
                            f"{record.unload_sent_after_s:.3f} s")
        self._wait_for_release(record, model)
        entry.duration_s = self._since_breach(record)

    def _wait_for_release(self, record: PreemptionRecord, model: str) -> None:
        guard = self.guard
        settings = self.policy.settings
        empty = self._empty_bytes()
        sent_at = time.monotonic()
        held_after_unload = model_memory_bytes(self.monitor.sample_now(), empty)
        give_up_at = sent_at + settings.preempt_release_deadline_s + settings.restart_deadline_s
        restarted = dropped = False
        while time.monotonic() < give_up_at:
            reading = self.monitor.sample_now()
            with self._lock:
                peak = record.peak_held_bytes
            models_released = released(reading, held_at_breach_bytes=peak,
                                       empty_working_set_bytes=empty,
                                       release_fraction=settings.cleanup_min_release_fraction)
            decision = self.policy.while_preempting(
                since_unload_s=time.monotonic() - sent_at,
                held_after_unload_bytes=held_after_unload,
                held_now_bytes=model_memory_bytes(reading, empty),
                budget_bytes=reading.model_budget_bytes, restarted=restarted,
                models_released=models_released, reading=reading,
                can_drop_caches=guard.actions.can_drop_caches(), dropped_caches=dropped)
            if decision.action is Action.DROP_CACHES:
                dropped = True
                done = guard.decider.carry_out(model, decision, reading)
                outcome = "dropped" if done else "drop refused"
                record.steps.append(f"caches {outcome} at {self._since_breach(record):.3f} s: "
                                    f"{decision.reason}")
                self._wait_for_headroom_after_drop(record)
                continue
            if models_released:
                self._released(record, reading, restarted, dropped)
                return
            if decision.action is Action.RESTART:
                record.restarted = True
                record.restart_reason = decision.reason
                record.steps.append(f"restart at {self._since_breach(record):.3f} s: "
                                    f"{decision.reason}")
                restarted = True
                if not guard.decider.carry_out(model, decision, reading):
                    record.steps.append("restart failed or not possible")
                    record.outcome = "memory not released and the container not restarted"
                    return  # nothing more can be done from here: the kernel's backstop holds
                continue
            time.sleep(EPISODE_POLL_S)
        record.outcome = "memory not released before the deadline"

    def _wait_for_headroom_after_drop(self, record: PreemptionRecord) -> None:
        """Give the released pages a moment to show in the host's reading after a drop."""
        deadline = time.monotonic() + DROP_SETTLE_S
        while time.monotonic() < deadline:
            if robot_has_memory_back(self.monitor.sample_now()):
                return
            time.sleep(EPISODE_POLL_S)

    def _released(self, record: PreemptionRecord, reading: MemoryReading, restarted: bool,
                  dropped: bool) -> None:
        record.released_after_s = reading.stamp_s - record.breach_stamp_s
        record.outcome = "released" + (" after a restart" if restarted else "") + \
            (" and a cache drop" if dropped else "")
        if not robot_has_memory_back(reading):
            record.outcome += "; the ROS headroom is still short"
        record.steps.append(f"memory back at {record.released_after_s:.3f} s")

    def wait_for_headroom(self, stop: threading.Event) -> str:
        """
        After an episode: wait for headroom as the policy says; "" to go on.

        Returns the policy's reason when the run must end (the robot still needs the memory).
        """
        guard = self.guard
        waited_s = 0.0
        dropped = False
        while not stop.is_set():
            reading = self.monitor.sample_now()
            decision = self.policy.after_preemption(
                reading, waited_s, can_drop_caches=guard.actions.can_drop_caches(),
                dropped_caches=dropped)
            if decision.action is Action.LOAD:
                return ""
            if decision.action is Action.END_RUN:
                guard.log.decision("", decision, reading)
                return decision.reason
            if decision.action is Action.DROP_CACHES:
                dropped = True
                guard.decider.carry_out("", decision, reading)
                continue
            if waited_s == 0.0:
                guard.log.decision("", decision, reading)
                guard.log.phase(Phase.WAITING_FOR_MEMORY, "", decision.reason)
            started = time.monotonic()
            stop.wait(self.monitor.period_s)
            waited_s += time.monotonic() - started
        return ""

    def _remember(self, record: PreemptionRecord) -> None:
        """Put the episode into each model's memory record (results.json, tests.jsonl)."""
        for name in record.models or [""]:
            if not name:
                continue
            memory = self.guard.record(name)
            preemptions = getattr(memory, "preemptions", None)
            if preemptions is not None:
                preemptions.append(record.to_dict())
            memory.unloads += 1
            memory.cleanup_successful = record.released_after_s is not None
            memory.abort_reason = memory.abort_reason or f"preempted: {record.reason}"
