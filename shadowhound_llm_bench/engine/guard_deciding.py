"""
The memory guard asks the one decider and carries its answer out: no step is chosen here.

Every unload, restart, cache drop and wait, whether before a model (make_room), after it (the
cleanup verdict), at the run's ends, for a calibration or in a preemption, is a decision of the
policy (core/decider/policy.py), logged with the reading it was taken on, then carried out by
GuardActions (engine/guard_actions.py).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import List, Mapping, Optional, Sequence, Tuple

from ..adapters.container_backend import ContainerBackend
from ..core.decider.decision import Action, Decision, LoadedModel, Preparation
from ..core.decider.policy import MemoryPolicy
from ..core.memory.footprint import FootprintPrediction
from ..core.memory.memory_reading import MemoryReading
from ..core.ollama.model_metadata import same_model
from .backend_record import measures_memory, unmeasured_reason
from .guard_actions import GuardActions, UnloadResult
from .guard_log import GuardLog
from .guard_readings import GuardReadings
from .memory_guard_api import ModelMemoryRecord

# After a page-cache drop: how long the host's memory may take to come back before the verdict.
RECLAIM_AFTER_DROP_S = 5.0


class GuardDecider:
    """Asks the policy at each point of a run and has GuardActions carry the answer out."""

    def __init__(self, *, policy: MemoryPolicy, readings: GuardReadings, actions: GuardActions,
                 log: GuardLog, backend: ContainerBackend) -> None:
        self.policy = policy
        self.settings = policy.settings
        self.readings = readings
        self.actions = actions
        self.log = log
        self.monitor = readings.monitor
        self.backend = backend

    # ------------------------------------------------------------------ any decision
    def carry_out(self, model: str, decision: Decision,
                  reading: Optional[MemoryReading]) -> bool:
        """
        Log a decision, then carry out its unload, restart, cache drop or wait.

        Returns whether the action was done (an unload: the models left /api/ps).
        """
        entry = self.log.decision(model, decision, reading)
        started = time.monotonic()
        done = True
        if decision.action in (Action.UNLOAD, Action.UNLOAD_OTHERS):
            done = not self.actions.unload(decision.models_to_unload, model).still_listed
        elif decision.action is Action.RESTART:
            done = self.actions.restart(model, decision.reason)
        elif decision.action is Action.DROP_CACHES:
            return self.actions.drop_caches(model, decision.drop_level)
        elif decision.action is Action.WAIT:
            self.actions.wait(model, decision.reason, self.monitor.period_s)
        entry.duration_s = time.monotonic() - started
        return done

    # ------------------------------------------------------------------ before a model
    def make_room(self, model: str, prediction: FootprintPrediction, mates: Tuple[str, ...],
                  mate_bytes: Mapping[str, int]) -> Tuple[Decision, List[str], "GuardRoom"]:
        """Ask the policy step by step until LOAD or SKIP; every step is carried out here."""
        room = GuardRoom(self, model, prediction, mates, mate_bytes)
        decision, steps = self.policy.make_room(model, prediction, room, Preparation(0))
        return decision, steps, room

    # ------------------------------------------------------------------ unload verdicts
    def unload_and_judge(self, models: Sequence[str]) -> bool:
        """Unload, let the policy judge the cleanup and restart when it says so; True if so."""
        unload = self.actions.unload(models, "")
        footprint = sum(self.readings.footprint_of(m) for m in models)
        verdict = self.policy.cleanup(", ".join(models), still_listed=unload.still_listed,
                                      before_unload_bytes=unload.before_bytes,
                                      after_unload_bytes=unload.after_bytes,
                                      footprint_bytes=footprint)
        decision = Decision(verdict.decision.action,
                            f"{verdict.decision.reason}; {unload.describe()}")
        if decision.action is Action.RESTART:
            self.log.decision("", decision, self.monitor.latest())
            return self.actions.restart("", decision.reason)
        self.log.decision("", decision, self.monitor.latest(), action="cleanup")
        return False

    def unload_after_model(self, model: str, record: ModelMemoryRecord, began: float) -> float:
        """
        Unload a model as decided after its tests and judge the cleanup (drop, restart).

        Returns the seconds the unload took (the decision's own time).
        """
        unload = self.actions.unload((model,), model)
        took_s = time.monotonic() - began
        record.unloads += 1
        record.memory_after_unload_bytes = unload.after_bytes
        record.reclaim_s = unload.reclaim_s
        if not unload.still_listed and not measures_memory(self.backend):
            # The working set here is the sum of /api/ps sizes: it drops by construction.
            record.cleanup_successful = None
            record.unverified = unmeasured_reason(self.backend)
            self.log.decision(model, Decision(
                Action.KEEP, f"cleanup unverified: /api/ps no longer lists {model}, but "
                f"{record.unverified}"), self.monitor.latest(), action="cleanup")
            return took_s
        footprint = self.readings.footprint_of
        verdict = self.policy.cleanup(model, still_listed=unload.still_listed,
                                      before_unload_bytes=unload.before_bytes,
                                      after_unload_bytes=unload.after_bytes,
                                      footprint_bytes=footprint(model),
                                      reclaim_stalled=unload.reclaim_stalled,
                                      can_drop_caches=self.actions.can_drop_caches())
        if verdict.decision.action is Action.DROP_CACHES:
            unload = self.drop_and_rejudge(model, verdict.decision, unload, began)
            record.memory_after_unload_bytes = unload.after_bytes
            record.reclaim_s = unload.reclaim_s
            verdict = self.policy.cleanup(model, still_listed=unload.still_listed,
                                          before_unload_bytes=unload.before_bytes,
                                          after_unload_bytes=unload.after_bytes,
                                          footprint_bytes=footprint(model),
                                          reclaim_stalled=unload.reclaim_stalled,
                                          dropped_caches=True)
        record.cleanup_successful = verdict.successful
        after_reading = self.monitor.latest()
        decision = replace(verdict.decision,
                           reason=f"{verdict.decision.reason}; {unload.describe()}")
        if decision.action is Action.RESTART:
            self.log.decision(model, decision, after_reading)
            self.actions.restart(model, decision.reason)
        else:
            self.log.decision(model, decision, after_reading, action="cleanup")
        return took_s

    def drop_and_rejudge(self, model: str, decision: Decision, unload: UnloadResult,
                         began: float) -> UnloadResult:
        """Drop the page cache as decided, then watch the memory come back once more."""
        footprint = self.readings.footprint_of(model)
        self.log.decision(model, decision, self.monitor.latest(), footprint, action="cleanup")
        if not self.actions.drop_caches(model, decision.drop_level):
            return unload
        started = time.monotonic()
        expected = int(self.settings.cleanup_min_release_fraction * footprint)
        # Only a host that has yet to get released memory back is worth a longer wait; memory
        # that stayed up with the model is judged over the usual grace.
        released = unload.before_bytes - unload.after_bytes >= expected
        grace_s = (min(self.settings.unload_deadline_s, RECLAIM_AFTER_DROP_S) if released
                   else self.settings.cleanup_grace_s)
        again = self.actions.watch_release(
            (model,), started=began, before=unload.before_bytes,
            available_before=unload.available_before_bytes, expected=expected, host_known=True,
            gone_already=True, expected_reclaim=unload.expected_reclaim_bytes, grace_s=grace_s)
        last_drop = self.actions.last_drop_entry
        if last_drop is not None:  # the wait for the memory is the drop's cost
            last_drop.duration_s += time.monotonic() - started
        return again

    # ------------------------------------------------------------------ calibration
    def clear_for_calibration(self, model: str, kept: Sequence[str]) -> List[str]:
        """
        Before a calibration loads model: unload what the policy names (never the kept models).

        Returns the steps taken ("unload_others", or none).
        """
        loaded = self.readings.loaded() or []
        if not loaded:
            return []
        decision = self.policy.before_calibration(model, [m.model for m in loaded], kept=kept)
        if decision.action is not Action.UNLOAD_OTHERS:
            self.log.decision("", decision, self.monitor.latest(), action="calibrate")
            return []
        self.carry_out(model, decision, self.monitor.latest())
        return [decision.action.value]

    def unload_after_calibration(self, model: str, *, why: str = "calibration") -> None:
        """After the sources were read with model loaded: unload it as the policy says."""
        decision = self.policy.after_calibration_load(model, why=why)
        if decision.action is Action.UNLOAD:
            self.carry_out(model, decision, self.monitor.latest())


class GuardRoom:
    """make_room's steps on the machine: unloads, restarts and waits, each logged with its time."""

    def __init__(self, decider: GuardDecider, model: str, prediction: FootprintPrediction,
                 mates: Tuple[str, ...], mate_bytes: Mapping[str, int]) -> None:
        self.decider = decider
        self.model = model
        self.prediction = prediction
        self.mates = mates
        self.mate_bytes = mate_bytes
        self.last_reading: Optional[MemoryReading] = None
        self.last_listed: List[str] = []

    def observe(self, done: Preparation) -> Optional[Tuple[MemoryReading, List[LoadedModel]]]:
        """Sample memory and /api/ps; hold room for batch-mates not loaded yet."""
        readings = self.decider.readings
        actions = self.decider.actions
        if actions.canceled():
            return None
        reading = readings.fresh_reading()
        loaded = readings.loaded() or []
        done.empty_working_set_bytes = readings.empty_working_set(reading, loaded)
        listed = [m.model for m in loaded]
        waiting = [m for m in self.mates if not any(same_model(m, n) for n in listed)]
        done.reserved_for = self.mates
        done.reserved_bytes = sum(self.mate_bytes[m] for m in waiting)
        done.costs = actions.management_costs.costs()
        done.can_drop_caches = actions.can_drop_caches()
        self.last_reading = reading
        self.last_listed = listed
        return reading, loaded

    def carry_out(self, decision: Decision, reading: MemoryReading, done: Preparation) -> float:
        """Unload, restart or wait as decided; the decision is logged with how long it took."""
        decider = self.decider
        actions = decider.actions
        entry = decider.log.decision(self.model, decision, reading,
                                     self.prediction.footprint_bytes)
        started = time.monotonic()
        if decision.action is Action.UNLOAD_OTHERS:
            actions.unload(decision.models_to_unload, self.model)
            decider.log.record_for(self.model).unloads += len(decision.models_to_unload)
        elif decision.action is Action.RESTART:
            actions.restart(self.model, decision.reason)
        elif decision.action is Action.DROP_CACHES:
            actions.drop_caches(self.model, decision.drop_level)
            return 0.0  # the drop's own entry has its time
        elif decision.action is Action.WAIT:
            actions.wait(self.model, decision.reason,
                         min(decider.monitor.period_s,
                             max(0.0, decider.settings.memory_wait_s - done.waited_s)))
        entry.duration_s = time.monotonic() - started
        return entry.duration_s
