"""The memory guard: asks the one MemoryPolicy and carries out unloads, restarts and waits."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from ..adapters.container_backend import (
    ContainerBackend, ContainerControlUnavailable, ContainerError)
from ..adapters.ollama_client import PS_DEADLINE_S, OllamaClient, OllamaError
from ..core.memory.footprint import (
    FootprintPrediction, FootprintPredictor, metadata_from_ollama, prediction_error)
from ..core.memory.memory_reading import ContainerState, MemoryReading
from ..core.ollama.model_metadata import find_tag, same_model
from ..core.decider.decision import Action, Decision, LoadedModel, Preparation
from ..core.decider.policy import MemoryPolicy
from ..core.decider.policy_settings import PolicySettings
from ..core.runs.progress import Phase
from ..core.decider.room_making import make_room
from ..core.units import to_gib
from ..adapters.memory_sources import CacheDropper
from ..core.memory.memory_calibration import CalibrationResult
from .container_limit import ContainerLimitKeeper
from .backend_record import (
    ContainerChanges, measures_memory, sources_without_gauge, unmeasured_reason, where_ollama_runs)
from .footprint_cache import FootprintCache
from .server_identity import cached_version
from .calibration_store import CalibrationStore
from .blind_sources import kept_measurement
from .memory_calibration import calibrate_guard
from .management_costs import ManagementCosts
from .memory_guard_api import (
    DecisionRecord, ModelMemoryRecord, PlannedModel, Proceed, RunPlan, Skip)
from .memory_monitor import MemoryMonitor
from .oom_backstop import OomBackstop
from .preemption import Preemptor

_LOG = logging.getLogger(__name__)

PhaseListener = Callable[[Phase, str, str], None]

# After a page-cache drop: how long the host's memory may take to come back before the verdict.
_RECLAIM_AFTER_DROP_S = 5.0


@dataclass(frozen=True)
class UnloadResult:
    """How an unload went: listed or not, working set before and after, and how it was judged."""

    still_listed: bool
    before_bytes: int
    after_bytes: int
    duration_s: float
    fresh_samples: int  # samples taken after /api/ps dropped the models
    listed_for_s: float  # from sending the unloads until /api/ps dropped them
    judged_over_s: float  # from then until the verdict
    reclaim_s: Optional[float] = None  # until the host got the memory back (None: not yet)
    reclaim_stalled: bool = False  # the models' memory left, the host did not get it back
    available_before_bytes: int = 0
    expected_reclaim_bytes: Optional[int] = None

    def describe(self) -> str:
        """Describe the timing behind a cleanup verdict."""
        if self.still_listed:
            return f"still listed after {self.duration_s:.2f} s"
        reclaim = ("host memory back after " + f"{self.reclaim_s:.2f} s"
                   if self.reclaim_s is not None else "host memory not back yet")
        return (f"/api/ps dropped it after {self.listed_for_s:.2f} s, judged from "
                f"{self.fresh_samples} fresh sample(s) over {self.judged_over_s:.2f} s; "
                f"{reclaim}")


class PolicyMemoryGuard:
    """Implements engine/memory_guard_api.MemoryGuard over a container backend and Ollama."""

    def __init__(self, *, policy: MemoryPolicy, monitor: MemoryMonitor,
                 backend: ContainerBackend, client: OllamaClient,
                 footprint_cache: Optional[FootprintCache] = None,
                 management_costs: Optional[ManagementCosts] = None,
                 on_phase: Optional[PhaseListener] = None, clock: Callable[[], float] = time.time,
                 cache_dropper: Optional[CacheDropper] = None,
                 calibration_store: Optional[CalibrationStore] = None,
                 ros_pids: Optional[Callable[[], Sequence[int]]] = None) -> None:
        self.policy = policy
        self.settings: PolicySettings = policy.settings
        self.monitor = monitor
        self.backend = backend
        self.client = client
        self.footprint_cache = footprint_cache
        # Unload and restart durations on this machine (the cost-aware policy weighs them).
        self.management_costs = management_costs or ManagementCosts()
        self.predictor = FootprintPredictor(
            num_ctx=self.settings.num_ctx,
            bytes_per_billion_params=self.settings.bytes_per_billion_params,
            memory_scale=self.settings.memory_scale)
        self.on_phase = on_phase
        self._clock = clock
        self._lock = threading.RLock()
        self._records: Dict[str, ModelMemoryRecord] = {}
        self._decisions: List[DecisionRecord] = []
        self._predictions: Dict[str, FootprintPrediction] = {}
        self._digests: Dict[str, str] = {}
        self._measured: Dict[str, int] = {}
        self._started: Dict[str, float] = {}
        self._alerted: Set[str] = set()
        self._failed_loads: Set[str] = set()
        self._together: Dict[str, Tuple[str, ...]] = {}  # batch-mates named at before_model
        self._empty_working_set_bytes: Optional[int] = None
        # model -> why its footprint cannot be measured in this run (engine/run_bookends.py)
        self.unmeasurable: Dict[str, str] = {}
        self._stop = threading.Event()  # set on close and on cancel: every wait ends at once
        self._canceled = threading.Event()
        self.restart_durations_s: List[float] = []
        # Page-cache drops (policy action drop_caches) and per-machine source calibration.
        self.cache_dropper = cache_dropper
        self.calibration_store = calibration_store
        self.calibration: Optional[CalibrationResult] = None
        self._metadata_estimates: Dict[str, int] = {}
        self.first_loads_checked: Set[str] = set()  # models whose first load checked the sources
        self._listed_at_load: Dict[str, Tuple[str, ...]] = {}
        self._last_drop_entry: Optional[DecisionRecord] = None
        self._container_changes = ContainerChanges(backend)
        where = where_ollama_runs(backend)
        if where:  # for the report: which backend, why, and what it reads
            self._log_decision("", Decision(Action.KEEP, where), monitor.latest(),
                               action="backend")
        # The watchdog on every memory sample (the policy decides, it carries out).
        self.preemptor: Optional[Preemptor] = (
            Preemptor(self).start() if self.settings.preempt_on_breach else None)
        # The kernel's backstop: the container's limit follows the budget (Docker API).
        self.limit_keeper: Optional[ContainerLimitKeeper] = (
            ContainerLimitKeeper(self).start() if self.settings.enforce_container_limit
            else None)
        self.oom_backstop: Optional[OomBackstop] = (
            OomBackstop(backend=backend, ros_pids=ros_pids or (lambda: ())).start()
            if self.settings.oom_score_backstop else None)

    def attach_cancel(self, token: Any) -> None:
        """End every wait when the run is canceled (token: engine.cancellation.CancelToken)."""
        def on_cancel(reason: str) -> None:
            self._canceled.set()
            self._stop.set()
        token.on_cancel(on_cancel)

    # ------------------------------------------------------------------ bookkeeping
    def _phase(self, phase: Phase, model: str, status: str) -> None:
        if self.on_phase is None:
            return
        try:
            self.on_phase(phase, model, status)
        except Exception:  # a broken display must not break memory management
            pass

    def _record_for(self, model: str) -> ModelMemoryRecord:
        with self._lock:
            if model not in self._records:
                self._records[model] = ModelMemoryRecord(model=model)
            return self._records[model]

    def _log_decision(self, model: str, decision: Decision, reading: Optional[MemoryReading],
                      predicted_bytes: int = 0, action: Optional[str] = None) -> DecisionRecord:
        entry = DecisionRecord(
            stamp_s=self._clock(), model=model, action=action or decision.action.value,
            reason=decision.reason,
            working_set_bytes=reading.container.working_set_bytes if reading else 0,
            predicted_footprint_bytes=predicted_bytes,
            model_budget_bytes=reading.model_budget_bytes if reading else 0,
            ros_reserve_bytes=reading.ros_reserve_bytes if reading else 0)
        with self._lock:
            self._decisions.append(entry)
            if model:
                self._record_for(model).decisions.append(entry)
        level = logging.WARNING if entry.action in ("skip", "abort", "alert") else logging.INFO
        _LOG.log(level, "memory policy [%s] %s", entry.action, entry.reason)
        return entry

    def _note_container_changes(self) -> None:
        """Record each time the name stood for another container (recreated, removed)."""
        for change in self._container_changes.new():
            self._log_decision("", Decision(Action.KEEP, change), self.monitor.latest(),
                               action="container")

    # ------------------------------------------------------------------ Ollama views
    def _tags(self) -> List[Dict[str, Any]]:
        try:
            return self.client.tags()
        except OllamaError as exc:
            _LOG.warning("cannot list models for footprint prediction: %s", exc)
            return []

    def predict(self, model: str, *, tags: Optional[Sequence[Mapping[str, Any]]] = None,
                refresh: bool = False) -> FootprintPrediction:
        """Best prediction of a model's footprint on this machine (cached for the run)."""
        with self._lock:
            cached = self._predictions.get(model)
        if cached is not None and not refresh:
            return cached
        if model in self._measured:
            prediction = self.predictor.predict(model, measured_bytes=self._measured[model])
        else:
            tag = find_tag(tags if tags is not None else self._tags(), model)
            show = None
            if tag is not None:
                try:
                    show = self.client.show(model)
                except OllamaError as exc:
                    _LOG.warning("cannot read %s's details: %s", model, exc)
            digest = str((tag or {}).get("digest") or "")
            self._digests[model] = digest
            cache = self.footprint_cache
            measured = (cache.get(model, digest=digest, num_ctx=self.settings.num_ctx)
                        if cache is not None and tag is not None else None)
            metadata = metadata_from_ollama(tag, show, cached_version(self.client))
            if metadata is not None:
                self._metadata_estimates[model] = self.predictor.predict(
                    model, metadata=metadata).footprint_bytes
            prediction = self.predictor.predict(model, measured_bytes=measured, metadata=metadata,
                                                measured_on=cache.measured_on() if cache else "")
        with self._lock:
            self._predictions[model] = prediction
        return prediction

    def _loaded(self, deadline_s: Optional[float] = None) -> Optional[List[LoadedModel]]:
        """Models Ollama holds now with their best known footprints; None if it does not answer."""
        try:
            entries = self.client.ps() if deadline_s is None else \
                self.client.ps(deadline_s=min(deadline_s, PS_DEADLINE_S))
        except OllamaError as exc:
            _LOG.warning("cannot list loaded models: %s", exc)
            return None
        loaded = []
        for entry in entries:
            name = str(entry.get("name") or entry.get("model") or "")
            size = self._measured.get(name) or self.predictor.scaled(int(entry.get("size") or 0))
            loaded.append(LoadedModel(name, size))
        self.monitor.set_loaded_models(len(loaded))
        return loaded

    def _empty_working_set(self, reading: MemoryReading, loaded: Sequence[LoadedModel]) -> int:
        """Working set of the container with no model: measured when nothing is loaded."""
        if not loaded:
            # Memory a model leaked (or cache it left) is not the empty container's: the
            # lowest reading with nothing loaded is (a restart measures it anew).
            now = reading.memory_in_use_bytes
            self._empty_working_set_bytes = now if self._empty_working_set_bytes is None \
                else min(now, self._empty_working_set_bytes)
        elif self._empty_working_set_bytes is None:
            held = sum(m.footprint_bytes for m in loaded)
            self._empty_working_set_bytes = max(0, reading.memory_in_use_bytes - held)
        return self._empty_working_set_bytes

    # ------------------------------------------------------------------ actions
    def _restart(self, model: str, reason: str) -> bool:
        """Restart the container and wait for Ollama; the outcome is recorded with its time."""
        self._phase(Phase.RESTARTING, model, f"restarting the Ollama container: {reason}")
        started = time.monotonic()
        record = self._record_for(model) if model else None
        try:
            duration = run_until_stopped(
                lambda: self.backend.restart(deadline_s=self.settings.restart_deadline_s),
                self._stop, what=f"restart of {self.backend.name}")
        except ContainerControlUnavailable as exc:
            self._log_decision(model, Decision(Action.KEEP, f"restart not possible: {exc}"),
                               self.monitor.latest(), action="restart")
            return False
        except ContainerError as exc:
            entry = self._log_decision(model, Decision(Action.RESTART, f"restart failed: {exc}"),
                                       self.monitor.latest())
            entry.duration_s = time.monotonic() - started
            return False
        self.restart_durations_s.append(duration)
        self.management_costs.add_restart(duration)
        self._failed_loads.discard(model)
        reading = self.monitor.sample_now()
        self._empty_working_set_bytes = reading.memory_in_use_bytes
        self.monitor.set_loaded_models(0)
        if record is not None:
            record.restarts += 1
        _LOG.info("container restarted in %.2f s; working set %.3f GiB", duration,
                  to_gib(reading.container.working_set_bytes))
        return True

    def _unload(self, models: Sequence[str], for_model: str) -> "UnloadResult":
        """
        Unload models and wait until /api/ps drops them and their memory is judged.

        The unloads are sent together (Ollama unloads asynchronously) and waited for once. Once
        /api/ps no longer lists them their runners have exited, so the memory is judged from
        fresh samples: back as soon as the expected share is released, "stayed up" after
        cleanup_samples fresh samples over cleanup_grace_s.
        """
        self._phase(Phase.UNLOADING, for_model, f"unloading {', '.join(models)}")
        started = time.monotonic()
        first = self._fresh_reading()
        before = first.memory_in_use_bytes
        expected = int(self.settings.cleanup_min_release_fraction * sum(
            self._footprint_of(m) for m in models))
        self._send_unloads(models)
        return self._watch_release(models, started=started, before=before,
                                   available_before=first.host_available_bytes,
                                   expected=expected, host_known=first.host_total_bytes > 0,
                                   expected_reclaim=_reclaim_expected(first, expected))

    def _watch_release(self, models: Sequence[str], *, started: float, before: int,
                       available_before: int, expected: int, host_known: bool,
                       gone_already: bool = False,
                       expected_reclaim: Optional[int] = None,
                       grace_s: Optional[float] = None) -> "UnloadResult":
        """
        Sample until the models' memory and the host's available memory are back, or judged.

        Reclaim time runs from `started` until MemAvailable rose by the expected release; with
        chosen memory sources the verdict also waits for it (a driver pool may hold the pages).
        """
        wait_for_reclaim = host_known and self.monitor.model_memory is not None
        reclaim_s: Optional[float] = None
        reclaim_target = expected if expected_reclaim is None else expected_reclaim
        grace_s = self.settings.cleanup_grace_s if grace_s is None else grace_s
        end = max(started + self.settings.unload_deadline_s, time.monotonic() + grace_s)
        gone_at: Optional[float] = time.monotonic() if gone_already else None
        gone_stamp_s = time.time() if gone_already else 0.0
        fresh = 0
        still_listed = not gone_already
        after = before
        reclaimed = released = False
        poll_s = min(0.05, self.monitor.period_s)
        now = started
        while not self._stop.is_set():  # canceled: the unloads are sent, no one waits
            if gone_at is None:
                # A /api/ps that does not answer proves nothing: ask again until the deadline.
                loaded = self._loaded(deadline_s=max(0.05, end - time.monotonic()))
                if loaded is not None:
                    listed = {m.model for m in loaded}
                    still_listed = any(same_model(m, n) for m in models for n in listed)
                    if not still_listed:
                        gone_at = time.monotonic()
                        gone_stamp_s = time.time()
            sample = self.monitor.sample_now()
            after = sample.memory_in_use_bytes
            now = time.monotonic()
            released = before - after >= expected
            reclaimed = host_known and \
                sample.host_available_bytes - available_before >= reclaim_target
            if reclaimed and reclaim_s is None:
                reclaim_s = now - started
            # Only a sample taken after the runners exited judges the unload: a backend that
            # reads through a slow API hands out its last (older) reading in between.
            if gone_at is not None and sample.container.stamp_s >= gone_stamp_s:
                fresh += 1
                if released and (reclaimed or not wait_for_reclaim):
                    break  # the memory came back: confirmed
                if fresh >= self.settings.cleanup_samples and now - gone_at >= grace_s:
                    break  # it stayed up over the grace: judged from these samples
            if now >= end:
                break
            self._stop.wait(poll_s if gone_at is None else min(poll_s, grace_s / 2 or poll_s))
        duration = time.monotonic() - started
        self.management_costs.add_unload(duration)
        return UnloadResult(
            still_listed=still_listed, before_bytes=before, after_bytes=after,
            duration_s=duration, fresh_samples=fresh,
            listed_for_s=(gone_at if gone_at is not None else now) - started,
            judged_over_s=now - gone_at if gone_at is not None else 0.0,
            reclaim_s=reclaim_s, available_before_bytes=available_before,
            expected_reclaim_bytes=reclaim_target,
            reclaim_stalled=wait_for_reclaim and released and not reclaimed)

    def _send_unloads(self, models: Sequence[str], deadline_s: Optional[float] = None) -> None:
        """Send every unload at once (a thread each when several); each has its deadline."""
        deadline_s = min(deadline_s or 10.0, self.settings.unload_deadline_s)

        def send(model: str) -> None:
            try:
                self.client.unload(model, deadline_s=deadline_s)
            except OllamaError as exc:
                _LOG.warning("unload of %s failed: %s", model, exc)

        if len(models) == 1:
            send(models[0])
            return
        threads = [threading.Thread(target=send, args=(m,), name=f"unload-{m}", daemon=True)
                   for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=deadline_s + 1.0)

    def _footprint_of(self, model: str) -> int:
        if model in self._measured:
            return self._measured[model]
        prediction = self._predictions.get(model)
        return prediction.footprint_bytes if prediction is not None else 0

    # ------------------------------------------------------------------ MemoryGuard
    def plan(self, models: Sequence[str]) -> RunPlan:
        """Order the models and predict footprints and management actions; changes nothing."""
        tags = self._tags()
        predictions = {m: self.predict(m, tags=tags) for m in dict.fromkeys(models)}
        ordered = self.policy.order(list(predictions), predictions)
        reading = self.monitor.latest() or self.monitor.sample_now()
        loaded = self._loaded() or []
        empty = self._empty_working_set(reading, loaded)
        batches = self.policy.batches(ordered, predictions, reading, empty)
        steps = self.policy.simulate(ordered, predictions, reading, loaded, empty,
                                     batches=batches, costs=self.management_costs.costs())
        planned = [PlannedModel(model=s.model,
                                predicted_footprint_bytes=s.prediction.footprint_bytes,
                                prediction_source=s.prediction.source,
                                actions_before=list(s.actions_before),
                                predicted_peak_bytes=s.predicted_peak_bytes,
                                skip_reason=s.skip_reason) for s in steps]
        return RunPlan(
            preset=self.settings.preset, models=planned,
            batches=batches,
            predicted_peak_bytes=max([s.predicted_peak_bytes for s in steps], default=0),
            predicted_unloads=sum(s.unloads for s in steps),
            predicted_restarts=sum(s.restarts for s in steps),
            model_budget_bytes=reading.model_budget_bytes,
            memory_sources=self.memory_sources_summary())

    def before_model(self, model: str,
                     together_with: Sequence[str] = ()) -> Union[Proceed, Skip]:
        """
        Make room for the model (unload, restart, wait) or say why it cannot run.

        together_with names batch-mates that will be loaded beside it (parallel testing): the
        predicted footprints of those not loaded yet are held back, and they are never unloaded
        to make room.
        """
        self._note_container_changes()
        record = self._record_for(model)
        record.skip_reason = ""
        mates = tuple(m for m in dict.fromkeys(together_with) if m != model)
        with self._lock:
            self._together[model] = mates
        known = self._predictions.get(model)
        prediction = self.predict(model, refresh=known is None or known.source != "measured")
        mate_bytes = {m: self.predict(m).footprint_bytes for m in mates}
        record.predicted_footprint_bytes = prediction.footprint_bytes
        record.prediction_source = prediction.source
        self._wait_for_preemption()
        room = _GuardRoom(self, model, prediction, mates, mate_bytes)
        decision, steps = make_room(self.policy, model, prediction, room, Preparation(0))
        reading = room.last_reading or self.monitor.latest()
        record.actions_before = steps
        self._log_decision(model, decision, reading, prediction.footprint_bytes)
        if decision.action is Action.LOAD and reading is not None:
            record.memory_before_bytes = reading.memory_in_use_bytes
            record.memory_source = reading.source
            self._listed_at_load[model] = tuple(room.last_listed)
            self._started[model] = reading.stamp_s
            self._alerted.discard(model)
            keep_alive = decision.keep_alive
            return Proceed(keep_alive=keep_alive if keep_alive is not None
                           else self.settings.keep_alive)
        record.skip_reason = decision.reason
        return Skip(decision.reason)

    def check_pressure(self, model: str) -> Optional[str]:
        """While a model is tested: an abort reason when the robot needs the memory."""
        preempted = self.preemptor.take_preempted(model) if self.preemptor else None
        if preempted is not None:
            return f"preempted: {preempted.reason}"
        reading = self.monitor.latest()
        if reading is None:
            return None
        decision = self.policy.check_pressure(model, reading)
        if decision.action is Action.ABORT:
            record = self._record_for(model)
            record.abort_reason = decision.reason
            self._log_decision(model, decision, reading, self._footprint_of(model))
            return decision.reason
        if decision.action is Action.ALERT and model not in self._alerted:
            self._alerted.add(model)  # once per model: the timeline holds the rest
            self._log_decision(model, decision, reading, self._footprint_of(model))
        return None

    def on_load_failure(self, model: str, error: str, attempt: int) -> bool:
        """Restart and retry once (per settings), then skip; True means retry the load."""
        record = self._record_for(model)
        decision = self.policy.on_load_failure(model, error, attempt,
                                               can_drop_caches=self._can_drop_caches())
        entry = self._log_decision(model, decision, self.monitor.latest(),
                                   self._footprint_of(model))
        if decision.action is Action.DROP_CACHES:
            record.retries += 1
            if self._drop_caches(model, decision.drop_level):
                return True
            decision = self.policy.on_load_failure(model, error, attempt)
            entry = self._log_decision(model, decision, self.monitor.latest(),
                                       self._footprint_of(model))
        if decision.action is Action.RETRY:
            started = time.monotonic()
            record.retries += 1
            if decision.restart_first:
                self._restart(model, decision.reason)
            entry.duration_s = time.monotonic() - started
            return True
        record.skip_reason = decision.reason
        self._failed_loads.add(model)
        return False

    def on_server_lost(self, model: str, error: str, attempt: int) -> bool:
        """
        Ollama stopped answering mid-run: restart as the policy says; True means retry the model.

        A stopped container is started again by the restart; a removed one cannot be, and the
        policy's reason says so.
        """
        record = self._record_for(model)
        state = self.backend.state()  # looks a recreated container up by name
        wait_until_present = getattr(self.backend, "wait_until_present", None)
        if state is ContainerState.MISSING and wait_until_present is not None:
            # Removed, or being recreated under its name (compose): give the new one a moment.
            state = wait_until_present(deadline_s=min(5.0, self.settings.restart_deadline_s))
        self._note_container_changes()
        decision = self.policy.on_server_lost(model, error, attempt, state)
        entry = self._log_decision(model, decision, self.monitor.sample_now(),
                                   self._footprint_of(model))
        if decision.action is not Action.RESTART:
            return False
        started = time.monotonic()
        record.retries += 1
        restarted = self._restart(model, decision.reason)
        entry.duration_s = time.monotonic() - started
        return restarted

    def after_model(self, model: str) -> None:
        """Unload and verify that the memory came back (per policy); restart when it did not."""
        self._note_container_changes()
        record = self._record_for(model)
        self._wait_for_preemption()
        if self.preemptor is not None:
            self.preemptor.take_preempted(model)  # the model ends here either way
        if self._canceled.is_set():  # ask Ollama to free the memory, off the result's path
            threading.Thread(target=self._send_unloads, args=((model,), 1.0), daemon=True).start()
            self._log_decision(model, Decision(Action.UNLOAD, f"run canceled: unload {model} "
                                               "sent, not waited for"), self.monitor.latest())
            return
        # The footprint and the unload are judged from a reading taken after the model ran.
        reading = self._fresh_reading()
        loaded = self._loaded() or []
        is_loaded = any(same_model(m.model, model) for m in loaded)
        working_set = reading.memory_in_use_bytes
        record.memory_after_bytes = working_set
        started_at = self._started.get(model, reading.stamp_s)
        record.memory_peak_bytes = max(working_set,
                                       self.monitor.peak_working_set_since(started_at))
        if not is_loaded:
            decision = self.policy.after_model_not_loaded(
                model, failed_load=model in self._failed_loads)
            self._log_decision(model, decision, reading)
            if decision.action is Action.RESTART:
                self._restart(model, decision.reason)
            return
        mates = self._together.get(model, ())
        if mates:
            # The working set also holds the batch-mates: no footprint of this model alone.
            _LOG.info("no footprint measured for %s: tested side by side with %s", model,
                      ", ".join(mates))
        elif not measures_memory(self.backend):
            record.unverified = unmeasured_reason(self.backend)
        elif any(same_model(model, m) for m in self.unmeasurable):
            _LOG.info("no footprint measured for %s: %s", model,
                      next(r for m, r in self.unmeasurable.items() if same_model(model, m)))
        elif record.memory_before_bytes is not None:  # a blind set may not move at all
            listed_now = {m.model for m in loaded}
            evicted = [m for m in self._listed_at_load.get(model, ())
                       if not same_model(m, model) and
                       not any(same_model(m, n) for n in listed_now)]
            self._remember_measurement(model, max(0, working_set - record.memory_before_bytes),
                                       evicted=evicted)
        decision = self.policy.after_model(model, reading)
        entry = self._log_decision(model, decision, reading, self._footprint_of(model))
        if decision.action is not Action.UNLOAD:
            return
        began = time.monotonic()
        unload = self._unload((model,), model)
        entry.duration_s = time.monotonic() - began
        record.unloads += 1
        record.memory_after_unload_bytes = unload.after_bytes
        record.reclaim_s = unload.reclaim_s
        if not unload.still_listed and not measures_memory(self.backend):
            # The working set here is the sum of /api/ps sizes: it drops by construction.
            record.cleanup_successful = None
            record.unverified = unmeasured_reason(self.backend)
            self._log_decision(model, Decision(
                Action.KEEP, f"cleanup unverified: /api/ps no longer lists {model}, but "
                f"{record.unverified}"), self.monitor.latest(), action="cleanup")
            return
        verdict = self.policy.cleanup(model, still_listed=unload.still_listed,
                                      before_unload_bytes=unload.before_bytes,
                                      after_unload_bytes=unload.after_bytes,
                                      footprint_bytes=self._footprint_of(model),
                                      reclaim_stalled=unload.reclaim_stalled,
                                      can_drop_caches=self._can_drop_caches())
        if verdict.decision.action is Action.DROP_CACHES:
            unload = self._drop_and_rejudge(model, verdict.decision, unload, began)
            record.memory_after_unload_bytes = unload.after_bytes
            record.reclaim_s = unload.reclaim_s
            verdict = self.policy.cleanup(model, still_listed=unload.still_listed,
                                          before_unload_bytes=unload.before_bytes,
                                          after_unload_bytes=unload.after_bytes,
                                          footprint_bytes=self._footprint_of(model),
                                          reclaim_stalled=unload.reclaim_stalled,
                                          dropped_caches=True)
        record.cleanup_successful = verdict.successful
        after_reading = self.monitor.latest()
        decision = replace(verdict.decision,
                           reason=f"{verdict.decision.reason}; {unload.describe()}")
        if decision.action is Action.RESTART:
            self._log_decision(model, decision, after_reading)
            self._restart(model, decision.reason)
        else:
            self._log_decision(model, decision, after_reading, action="cleanup")

    def _wait_for_preemption(self) -> None:
        """Let a preemption under way finish its release before anything else is done."""
        while self.preemptor is not None and not self._stop.is_set() \
                and not self.preemptor.wait_idle(0.05):
            pass

    def after_preemption(self) -> str:
        """After a model was preempted: wait for headroom as the policy says; "" to go on."""
        if self.preemptor is None or not self.preemptor.records():
            return ""
        self._wait_for_preemption()
        return self.preemptor.wait_for_headroom(self._stop)

    def _fresh_deadline_s(self) -> float:
        return min(5.0, self.settings.unload_deadline_s)

    def _remember_measurement(self, model: str, footprint_bytes: int,
                              evicted: Sequence[str] = ()) -> None:
        record = self._record_for(model)
        record.measured_footprint_bytes = footprint_bytes
        kept = kept_measurement(self, model, footprint_bytes, evicted)
        if kept is None:
            return
        footprint_bytes = kept
        self._measured[model] = footprint_bytes
        error = prediction_error(record.predicted_footprint_bytes, footprint_bytes)
        _LOG.info("measured footprint of %s: %.3f GiB (predicted %.3f GiB from %s, error %s)",
                  model, to_gib(footprint_bytes), to_gib(record.predicted_footprint_bytes),
                  record.prediction_source, "n/a" if error is None else f"{error * 100:+.1f} %")
        if self.footprint_cache is not None:
            self.footprint_cache.put(model, digest=self._digests.get(model, ""),
                                     num_ctx=self.settings.num_ctx,
                                     footprint_bytes=footprint_bytes)

    def _fresh_reading(self) -> MemoryReading:
        """Sample now with every chosen source read anew (for measurements and verdicts)."""
        gauge = self.monitor.model_memory
        if gauge is not None:
            gauge.invalidate()
        # A container read through the stats API hands out its last reading: wait for one
        # taken after now.
        return self.monitor.sample_after(time.time(), deadline_s=self._fresh_deadline_s())

    def _can_drop_caches(self) -> bool:
        """Tell whether a dropper is configured and was not refused the privilege."""
        return self.cache_dropper is not None and self.cache_dropper.privileged is not False

    def _drop_caches(self, model: str, level: int = 3) -> bool:
        """Carry out a drop_caches decision at its level; a missing privilege is said once."""
        if self.cache_dropper is None:
            return False
        refused_before = self.cache_dropper.privileged is False
        started = time.monotonic()
        outcome = self.cache_dropper.drop(level)
        record = self._record_for(model) if model else None
        if outcome.dropped and record is not None:
            record.drop_caches_calls += 1
        if outcome.dropped or not refused_before:
            entry = self._log_decision(model, Decision(Action.KEEP, outcome.message),
                                       self.monitor.sample_now(), action="drop_caches")
            entry.duration_s = time.monotonic() - started
            self._last_drop_entry = entry
        return outcome.dropped

    def _drop_and_rejudge(self, model: str, decision: Decision, unload: "UnloadResult",
                          began: float) -> "UnloadResult":
        """Drop the page cache as decided, then watch the memory come back once more."""
        self._log_decision(model, decision, self.monitor.latest(),
                           self._footprint_of(model), action="cleanup")
        if not self._drop_caches(model, decision.drop_level):
            return unload
        started = time.monotonic()
        expected = int(self.settings.cleanup_min_release_fraction * self._footprint_of(model))
        # Only a host that has yet to get released memory back is worth a longer wait; memory
        # that stayed up with the model is judged over the usual grace.
        released = unload.before_bytes - unload.after_bytes >= expected
        grace_s = (min(self.settings.unload_deadline_s, _RECLAIM_AFTER_DROP_S) if released
                   else self.settings.cleanup_grace_s)
        again = self._watch_release((model,), started=began, before=unload.before_bytes,
                                    available_before=unload.available_before_bytes,
                                    expected=expected, host_known=True, gone_already=True,
                                    expected_reclaim=unload.expected_reclaim_bytes,
                                    grace_s=grace_s)
        if self._last_drop_entry is not None:  # the wait for the memory is the drop's cost
            self._last_drop_entry.duration_s += time.monotonic() - started
        return again

    def memory_sources_summary(self) -> str:
        """Which sources model memory is read from, and why (for plans and reports)."""
        gauge = self.monitor.model_memory
        if gauge is None or not measures_memory(self.backend):
            return sources_without_gauge(self.backend)
        chosen = gauge.chosen
        if chosen.calibration is not None:
            return f"{chosen.origin}: {chosen.calibration.describe()}"
        if chosen.origin == "configured":
            return f"{chosen.label} (configured)"
        return (f"not calibrated on this machine yet: a run first loads the smallest requested "
                f"model to choose the sources; until then {chosen.label}")

    def calibrate(self, models: Sequence[str], *, force: bool = False) -> Optional[str]:
        """Choose the memory sources on this machine (first run, or forced); None if skipped."""
        return calibrate_guard(self, models, force=force)

    def record(self, model: str) -> ModelMemoryRecord:
        """Return the memory record of a model tested (or skipped) in this run."""
        return self._record_for(model)

    def records(self) -> List[ModelMemoryRecord]:
        """Every model's record, in the order they were first seen."""
        with self._lock:
            return list(self._records.values())

    def latest_reading(self) -> Optional[MemoryReading]:
        """Return the most recent memory reading; never blocks on I/O."""
        return self.monitor.latest()

    def timeline(self) -> List[MemoryReading]:
        """Every reading of this run, oldest first."""
        return self.monitor.timeline()

    def decisions(self) -> List[DecisionRecord]:
        """Every decision of this run, oldest first."""
        with self._lock:
            return list(self._decisions)

    def stop_watchers(self) -> None:
        """Stop the watchers this guard put on the monitor (preemption)."""
        if self.preemptor is not None:
            self.preemptor.stop()
        if self.limit_keeper is not None:
            self.limit_keeper.stop()
        if self.oom_backstop is not None:
            self.oom_backstop.stop()

    def close(self) -> None:
        """Stop waiting and sampling (the container keeps running)."""
        self._stop.set()
        self.stop_watchers()
        self.monitor.stop()


def _reclaim_expected(reading: MemoryReading, expected_release: int) -> int:
    """
    How far MemAvailable must rise for the released memory to count as back.

    Page cache inside model memory (mmap'd weights) was counted as available all along, so only
    the rest of the release can show up there.
    """
    in_use = reading.memory_in_use_bytes
    if in_use <= 0:
        return expected_release
    share = max(0.0, 1.0 - reading.cache_in_model_memory_bytes / in_use)
    return int(expected_release * share)


class _GuardRoom:
    """make_room's steps on the machine: unloads, restarts and waits, each logged with its time."""

    def __init__(self, guard: PolicyMemoryGuard, model: str, prediction: FootprintPrediction,
                 mates: Tuple[str, ...], mate_bytes: Mapping[str, int]) -> None:
        self.guard = guard
        self.model = model
        self.prediction = prediction
        self.mates = mates
        self.mate_bytes = mate_bytes
        self.last_reading: Optional[MemoryReading] = None
        self.last_listed: List[str] = []

    def observe(self, done: Preparation) -> Optional[Tuple[MemoryReading, List[LoadedModel]]]:
        """Sample memory and /api/ps; hold room for batch-mates not loaded yet."""
        guard = self.guard
        if guard._canceled.is_set():
            return None
        reading = guard._fresh_reading()
        loaded = guard._loaded() or []
        done.empty_working_set_bytes = guard._empty_working_set(reading, loaded)
        listed = [m.model for m in loaded]
        waiting = [m for m in self.mates if not any(same_model(m, n) for n in listed)]
        done.reserved_for = self.mates
        done.reserved_bytes = sum(self.mate_bytes[m] for m in waiting)
        done.costs = guard.management_costs.costs()
        done.can_drop_caches = guard._can_drop_caches()
        self.last_reading = reading
        self.last_listed = listed
        return reading, loaded

    def carry_out(self, decision: Decision, reading: MemoryReading, done: Preparation) -> float:
        """Unload, restart or wait as decided; the decision is logged with how long it took."""
        guard = self.guard
        entry = guard._log_decision(self.model, decision, reading, self.prediction.footprint_bytes)
        started = time.monotonic()
        if decision.action is Action.UNLOAD_OTHERS:
            guard._unload(decision.models_to_unload, self.model)
            guard._record_for(self.model).unloads += len(decision.models_to_unload)
        elif decision.action is Action.RESTART:
            guard._restart(self.model, decision.reason)
        elif decision.action is Action.DROP_CACHES:
            guard._drop_caches(self.model, decision.drop_level)
            return 0.0  # the drop's own entry has its time
        elif decision.action is Action.WAIT:
            guard._phase(Phase.WAITING_FOR_MEMORY, self.model, decision.reason)
            guard._stop.wait(min(guard.monitor.period_s,
                                 max(0.0, guard.settings.memory_wait_s - done.waited_s)))
        entry.duration_s = time.monotonic() - started
        return entry.duration_s


def run_until_stopped(work: Callable[[], float], stop: threading.Event, *, what: str) -> float:
    """
    Run a blocking container call on a thread; ContainerError as soon as stop is set.

    The call itself goes on (a restart finishes on its own); only the waiting ends.
    """
    outcome: Dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="container-call", daemon=True)
    thread.start()
    while thread.is_alive():
        if stop.wait(0.05):
            raise ContainerError(f"{what}: no longer waited for (canceled); it goes on")
        thread.join(0.0)
    if "error" in outcome:
        raise outcome["error"]
    return float(outcome["value"])
