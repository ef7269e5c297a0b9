"""
The memory guard: the one facade the runner, the CLI and the node use around every model.

It is put together from three parts with small public surfaces: GuardReadings
(engine/guard_readings.py: fresh readings, what Ollama holds, footprints), GuardDecider
(engine/guard_deciding.py: asks the one MemoryPolicy, make_room among it, at every point) and
GuardActions (engine/guard_actions.py: unloads, restarts, cache drops and waits on Ollama and
the container); GuardLog (engine/guard_log.py) keeps the decisions and each model's record.
Calibration, the first-load check, the preemption watchdog and the run's bookends use the same
parts, so every step they take is a decision of the same policy.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from ..adapters.container_backend import ContainerBackend
from ..adapters.memory_sources import CacheDropper
from ..adapters.ollama_client import OllamaClient
from ..core.decider.decision import Action, Decision
from ..core.decider.policy import MemoryPolicy
from ..core.decider.policy_settings import PolicySettings
from ..core.decider.simulation import with_working_set
from ..core.memory.footprint import FootprintPrediction, FootprintPredictor, prediction_error
from ..core.memory.memory_calibration import CalibrationResult
from ..core.memory.memory_reading import ContainerState, MemoryReading
from ..core.ollama.model_metadata import same_model
from ..core.units import to_gib
from .backend_record import (
    ContainerChanges, measures_memory, sources_without_gauge, unmeasured_reason, where_ollama_runs)
from .blind_sources import kept_measurement
from .calibration_store import CalibrationStore
from .container_limit import ContainerLimitKeeper
from .footprint_cache import FootprintCache
from .guard_actions import GuardActions, UnloadResult, run_until_stopped
from .guard_deciding import GuardDecider
from .guard_log import GuardLog, PhaseListener
from .guard_readings import GuardReadings
from .management_costs import ManagementCosts
from .memory_calibration import calibrate_guard, planned_calibration
from .memory_guard_api import (
    DecisionRecord, ModelMemoryRecord, PlannedModel, Proceed, RunPlan, Skip)
from .memory_monitor import MemoryMonitor
from .oom_backstop import OomBackstop
from .preemption import Preemptor

__all__ = ["PhaseListener", "PolicyMemoryGuard", "Proceed", "Skip", "UnloadResult",
           "run_until_stopped"]

_LOG = logging.getLogger(__name__)


class PolicyMemoryGuard:
    """Implements engine/memory_guard_api.MemoryGuard over a container backend and Ollama."""

    def __init__(self, *, policy: MemoryPolicy, monitor: MemoryMonitor,
                 backend: ContainerBackend, client: OllamaClient,
                 footprint_cache: Optional[FootprintCache] = None,
                 management_costs: Optional[ManagementCosts] = None,
                 on_phase: Optional[PhaseListener] = None, clock: Callable[[], float] = time.time,
                 cache_dropper: Optional[CacheDropper] = None,
                 calibration_store: Optional[CalibrationStore] = None,
                 ros_pids: Optional[Callable[[], Sequence[int]]] = None,
                 memory_scale: float = 1.0) -> None:  # < 1 on a simulated machine only
        self.policy = policy
        self.settings: PolicySettings = policy.settings
        self.monitor = monitor
        self.backend = backend
        self.client = client
        self.log = GuardLog(clock=clock, on_phase=on_phase)
        self.readings = GuardReadings(client=client, monitor=monitor, settings=self.settings,
                                      footprint_cache=footprint_cache, memory_scale=memory_scale)
        self.actions = GuardActions(
            backend=backend, client=client, monitor=monitor, settings=self.settings,
            readings=self.readings, log=self.log,
            management_costs=management_costs or ManagementCosts(), cache_dropper=cache_dropper)
        self.decider = GuardDecider(policy=policy, readings=self.readings, actions=self.actions,
                                    log=self.log, backend=backend)
        self._lock = threading.RLock()
        self._started: Dict[str, float] = {}
        self._alerted: Set[str] = set()
        self._together: Dict[str, Tuple[str, ...]] = {}  # batch-mates named at before_model
        # model -> why its footprint cannot be measured in this run (engine/run_bookends.py)
        self.unmeasurable: Dict[str, str] = {}
        # Models found loaded at the start that the user asked to keep: nothing unloads them.
        self.kept_found_loaded: Tuple[str, ...] = ()
        # Per-machine source calibration (engine/memory_calibration.py).
        self.calibration_store = calibration_store
        self.calibration: Optional[CalibrationResult] = None
        self.calibration_steps: List[str] = []  # what the calibration of this run did
        self.first_loads_checked: Set[str] = set()  # models whose first load checked the sources
        self._listed_at_load: Dict[str, Tuple[str, ...]] = {}
        self._container_changes = ContainerChanges(backend)
        where = where_ollama_runs(backend)
        if where:  # for the report: which backend, why, and what it reads
            self.log.decision("", Decision(Action.KEEP, where), monitor.latest(),
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

    # ------------------------------------------------------------------ the parts, shared
    @property
    def footprint_cache(self) -> Optional[FootprintCache]:
        """Return the footprints measured on this machine (None: not kept)."""
        return self.readings.footprint_cache

    @property
    def predictor(self) -> FootprintPredictor:
        """Return what predicts footprints from metadata and measurements."""
        return self.readings.predictor

    @property
    def management_costs(self) -> ManagementCosts:
        """Return the unload and restart durations on this machine."""
        return self.actions.management_costs

    @property
    def cache_dropper(self) -> Optional[CacheDropper]:
        """Return what drops the page cache when the policy says so (None: never)."""
        return self.actions.cache_dropper

    @cache_dropper.setter
    def cache_dropper(self, dropper: Optional[CacheDropper]) -> None:
        self.actions.cache_dropper = dropper

    @property
    def restart_durations_s(self) -> List[float]:
        """Return how long each restart of this run took."""
        return self.actions.restart_durations_s

    @property
    def on_phase(self) -> Optional[PhaseListener]:
        """Return who is told what the guard does now (unloading, restarting, waiting)."""
        return self.log.on_phase

    @on_phase.setter
    def on_phase(self, listener: Optional[PhaseListener]) -> None:
        self.log.on_phase = listener

    @property
    def metadata_estimates(self) -> Dict[str, int]:
        """Return each model's footprint from Ollama's metadata (calibration's yardstick)."""
        return self.readings.metadata_estimates

    def attach_cancel(self, token: Any) -> None:
        """End every wait when the run is canceled (token: engine.cancellation.CancelToken)."""
        def on_cancel(reason: str) -> None:
            self.actions.cancel()
        token.on_cancel(on_cancel)

    def canceled(self) -> bool:
        """Tell whether the run was canceled."""
        return self.actions.canceled()

    def stop_waiting(self) -> None:
        """End every wait now (the monitor keeps sampling)."""
        self.actions.stop()

    def keep_found_loaded(self, models: Sequence[str]) -> None:
        """Models found loaded at the start that stay loaded: calibration never unloads them."""
        self.kept_found_loaded = tuple(dict.fromkeys(models))

    def log_decision(self, model: str, decision: Decision, reading: Optional[MemoryReading],
                     predicted_bytes: int = 0, action: Optional[str] = None) -> DecisionRecord:
        """Record a decision in the run's log (engine/guard_log.py)."""
        return self.log.decision(model, decision, reading, predicted_bytes, action)

    def _note_container_changes(self) -> None:
        """Record each time the name stood for another container (recreated, removed)."""
        for change in self._container_changes.new():
            self.log.decision("", Decision(Action.KEEP, change), self.monitor.latest(),
                              action="container")

    def predict(self, model: str, *, tags: Optional[Sequence[Mapping[str, Any]]] = None,
                refresh: bool = False) -> FootprintPrediction:
        """Best prediction of a model's footprint on this machine (cached for the run)."""
        return self.readings.predict(model, tags=tags, refresh=refresh)

    # ------------------------------------------------------------------ MemoryGuard
    def plan(self, models: Sequence[str]) -> RunPlan:
        """Order the models and predict footprints and management actions; changes nothing."""
        tags = self.readings.tags()
        predictions = {m: self.predict(m, tags=tags) for m in dict.fromkeys(models)}
        ordered = self.policy.order(list(predictions), predictions)
        reading = self.monitor.latest() or self.monitor.sample_now()
        loaded = self.readings.loaded() or []
        empty = self.readings.empty_working_set(reading, loaded)
        calibration, unloaded = (list(self.calibration_steps), ()) if self.calibration_steps \
            else planned_calibration(self, list(predictions), [m.model for m in loaded])
        if unloaded:  # the models start from what the calibration leaves loaded
            gone = [m for m in loaded if m.model in unloaded]
            loaded = [m for m in loaded if m.model not in unloaded]
            reading = with_working_set(reading, max(empty, reading.memory_in_use_bytes - sum(
                m.footprint_bytes for m in gone)))
        batches = self.policy.batches(ordered, predictions, reading, empty)
        steps = self.policy.simulate(ordered, predictions, reading, loaded, empty,
                                     batches=batches, costs=self.actions.management_costs.costs())
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
            memory_sources=self.memory_sources_summary(), calibration_steps=calibration)

    def before_model(self, model: str,
                     together_with: Sequence[str] = ()) -> Union[Proceed, Skip]:
        """
        Make room for the model (unload, restart, wait) or say why it cannot run.

        together_with names batch-mates that will be loaded beside it (parallel testing): the
        predicted footprints of those not loaded yet are held back, and they are never unloaded
        to make room.
        """
        self._note_container_changes()
        record = self.log.record_for(model)
        record.skip_reason = ""
        mates = tuple(m for m in dict.fromkeys(together_with) if m != model)
        with self._lock:
            self._together[model] = mates
        known = self.readings.known_prediction(model)
        prediction = self.predict(model, refresh=known is None or known.source != "measured")
        mate_bytes = {m: self.predict(m).footprint_bytes for m in mates}
        record.predicted_footprint_bytes = prediction.footprint_bytes
        record.prediction_source = prediction.source
        self._wait_for_preemption()
        decision, steps, room = self.decider.make_room(model, prediction, mates, mate_bytes)
        reading = room.last_reading or self.monitor.latest()
        record.actions_before = steps
        self.log.decision(model, decision, reading, prediction.footprint_bytes)
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
            record = self.log.record_for(model)
            record.abort_reason = decision.reason
            self.log.decision(model, decision, reading, self.readings.footprint_of(model))
            return decision.reason
        if decision.action is Action.ALERT and model not in self._alerted:
            self._alerted.add(model)  # once per model: the timeline holds the rest
            self.log.decision(model, decision, reading, self.readings.footprint_of(model))
        return None

    def on_load_failure(self, model: str, error: str, attempt: int) -> bool:
        """Restart and retry once (per settings), then skip; True means retry the load."""
        record = self.log.record_for(model)
        decision = self.policy.on_load_failure(model, error, attempt,
                                               can_drop_caches=self.actions.can_drop_caches())
        entry = self.log.decision(model, decision, self.monitor.latest(),
                                  self.readings.footprint_of(model))
        if decision.action is Action.DROP_CACHES:
            record.retries += 1
            if self.actions.drop_caches(model, decision.drop_level):
                return True
            decision = self.policy.on_load_failure(model, error, attempt)
            entry = self.log.decision(model, decision, self.monitor.latest(),
                                      self.readings.footprint_of(model))
        if decision.action is Action.RETRY:
            started = time.monotonic()
            record.retries += 1
            if decision.restart_first:
                self.actions.restart(model, decision.reason)
            entry.duration_s = time.monotonic() - started
            return True
        record.skip_reason = decision.reason
        self.log.failed_loads.add(model)
        return False

    def on_server_lost(self, model: str, error: str, attempt: int) -> bool:
        """
        Ollama stopped answering mid-run: restart as the policy says; True means retry the model.

        A stopped container is started again by the restart; a removed one cannot be, and the
        policy's reason says so.
        """
        record = self.log.record_for(model)
        state = self.backend.state()  # looks a recreated container up by name
        wait_until_present = getattr(self.backend, "wait_until_present", None)
        if state is ContainerState.MISSING and wait_until_present is not None:
            # Removed, or being recreated under its name (compose): give the new one a moment.
            state = wait_until_present(deadline_s=min(5.0, self.settings.restart_deadline_s))
        self._note_container_changes()
        decision = self.policy.on_server_lost(model, error, attempt, state)
        entry = self.log.decision(model, decision, self.monitor.sample_now(),
                                  self.readings.footprint_of(model))
        if decision.action is not Action.RESTART:
            return False
        started = time.monotonic()
        record.retries += 1
        restarted = self.actions.restart(model, decision.reason)
        entry.duration_s = time.monotonic() - started
        return restarted

    def after_model(self, model: str) -> None:
        """Unload and verify that the memory came back (per policy); restart when it did not."""
        self._note_container_changes()
        record = self.log.record_for(model)
        self._wait_for_preemption()
        if self.preemptor is not None:
            self.preemptor.take_preempted(model)  # the model ends here either way
        if self.actions.canceled():  # ask Ollama to free the memory, off the result's path
            threading.Thread(target=self.actions.send_unloads, args=((model,), 1.0),
                             daemon=True).start()
            self.log.decision(model, Decision(Action.UNLOAD, f"run canceled: unload {model} "
                                              "sent, not waited for"), self.monitor.latest())
            return
        # The footprint and the unload are judged from a reading taken after the model ran.
        reading = self.readings.fresh_reading()
        loaded = self.readings.loaded() or []
        is_loaded = any(same_model(m.model, model) for m in loaded)
        working_set = reading.memory_in_use_bytes
        record.memory_after_bytes = working_set
        started_at = self._started.get(model, reading.stamp_s)
        record.memory_peak_bytes = max(working_set,
                                       self.monitor.peak_working_set_since(started_at))
        if not is_loaded:
            decision = self.policy.after_model_not_loaded(
                model, failed_load=model in self.log.failed_loads)
            self.log.decision(model, decision, reading)
            if decision.action is Action.RESTART:
                self.actions.restart(model, decision.reason)
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
        entry = self.log.decision(model, decision, reading, self.readings.footprint_of(model))
        if decision.action is not Action.UNLOAD:
            return
        began = time.monotonic()
        entry.duration_s = self.decider.unload_after_model(model, record, began)

    def _wait_for_preemption(self) -> None:
        """Let a preemption under way finish its release before anything else is done."""
        while self.preemptor is not None and not self.actions.stop_event.is_set() \
                and not self.preemptor.wait_idle(0.05):
            pass

    def after_preemption(self) -> str:
        """After a model was preempted: wait for headroom as the policy says; "" to go on."""
        if self.preemptor is None or not self.preemptor.records():
            return ""
        self._wait_for_preemption()
        return self.preemptor.wait_for_headroom(self.actions.stop_event)

    def _remember_measurement(self, model: str, footprint_bytes: int,
                              evicted: Sequence[str] = ()) -> None:
        record = self.log.record_for(model)
        record.measured_footprint_bytes = footprint_bytes
        kept = kept_measurement(self, model, footprint_bytes, evicted)
        if kept is None:
            return
        footprint_bytes = kept
        self.readings.keep_measurement(model, footprint_bytes)
        error = prediction_error(record.predicted_footprint_bytes, footprint_bytes)
        _LOG.info("measured footprint of %s: %.3f GiB (predicted %.3f GiB from %s, error %s)",
                  model, to_gib(footprint_bytes), to_gib(record.predicted_footprint_bytes),
                  record.prediction_source, "n/a" if error is None else f"{error * 100:+.1f} %")

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
        return self.log.record_for(model)

    def records(self) -> List[ModelMemoryRecord]:
        """Every model's record, in the order they were first seen."""
        return self.log.records()

    def latest_reading(self) -> Optional[MemoryReading]:
        """Return the most recent memory reading; never blocks on I/O."""
        return self.monitor.latest()

    def timeline(self) -> List[MemoryReading]:
        """Every reading of this run, oldest first."""
        return self.monitor.timeline()

    def decisions(self) -> List[DecisionRecord]:
        """Every decision of this run, oldest first."""
        return self.log.decisions()

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
        self.actions.stop()
        self.stop_watchers()
        self.monitor.stop()
