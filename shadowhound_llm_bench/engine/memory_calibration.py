"""
Memory-source calibration: load the smallest model (and a larger one) and keep what tracked them.

With more than one model requested, a second, larger model is loaded too (the largest whose
prediction is at most half the model budget and at least twice the smallest's): a source that
moved with the runner's own share but not with the model's memory tracks a small model only.

The result lives in `memory_calibration.json` beside the footprint cache, one entry per server
(core/ollama/server_key: backend, container or unit, Ollama version, machine) and machine reading
(host name, total memory, GPU reader): a robot calibrates on its first run against each server,
and a calibration made against another server (the simulator, another release) is never used.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from ..adapters.container_backend import ContainerBackend
from ..adapters.memory_sources import MemorySourceReader
from ..adapters.ollama_client import OllamaClient, OllamaError
from ..core.memory.memory_calibration import (CalibrationResult, ChosenSources, LoadCheck,
                                              choose_sources)
from ..core.memory.memory_sources import (MemorySourceError, SourceSnapshot, ollama_ps_memory,
                                          source_values)
from ..core.ollama.model_metadata import same_model
from ..core.decider.decision import Action, Decision
from ..core.decider.policy import MemoryPolicy
from ..core.memory.footprint import FootprintPrediction
from ..core.decider.policy_settings import PolicySettings
from .backend_record import measures_memory
from .calibration_store import CalibrationStore
from .guard_actions import GuardActions
from .guard_deciding import GuardDecider
from .guard_log import GuardLog
from .guard_readings import GuardReadings
from .memory_monitor import MemoryMonitor


class CalibratedGuard(Protocol):
    """What calibration uses of the memory guard (engine/memory_guard.py PolicyMemoryGuard)."""

    monitor: MemoryMonitor
    backend: ContainerBackend
    client: OllamaClient
    settings: PolicySettings
    policy: MemoryPolicy
    readings: GuardReadings
    decider: GuardDecider
    log: GuardLog
    actions: GuardActions
    calibration_store: Optional[CalibrationStore]
    calibration: Optional[CalibrationResult]
    calibration_steps: List[str]
    kept_found_loaded: Tuple[str, ...]

    def predict(self, model: str) -> FootprintPrediction:
        """Best prediction of a model's footprint on this machine."""


@dataclass(frozen=True)
class CalibrationChoice:
    """The models a calibration loads: the smallest known one and, when there is, a larger one."""

    model: str  # "": no requested model of known size is on the server
    second: str
    predicted_bytes: int  # the smallest's metadata estimate
    known: Tuple[FootprintPrediction, ...]

    def steps(self) -> List[str]:
        """Return the loads and unloads of the calibration, in order."""
        return [step for m in (self.model, self.second) if m
                for step in (f"calibrate {m}", Action.UNLOAD.value)]


_SETTLE_SAMPLES = 3
# The second calibration model: at least this many times the smallest's prediction (a model of
# about the same size tells nothing new) and at most this share of the model budget.
_SECOND_MIN_RATIO = 2.0
_SECOND_MAX_BUDGET_SHARE = 0.5


def machine_key(reader: MemorySourceReader) -> str:
    """One key per machine: host name, total memory of its meminfo and the GPU reader."""
    try:
        total = str(reader.meminfo().total_bytes)
    except MemorySourceError:
        total = "unknown"
    gpu = "gpu" if reader.gpu is not None else "nogpu"
    return f"{socket.gethostname()}|{total}|{gpu}"


def chosen_from(result: CalibrationResult, origin: str) -> ChosenSources:
    """Return the monitor's sources from a calibration result."""
    return ChosenSources(sources=result.chosen, origin=origin, calibration=result,
                         other_host_bytes=result.other_host_bytes)


def apply_stored(guard: CalibratedGuard) -> Optional[CalibrationResult]:
    """Use the calibration kept for this machine, if any (at start-up: dry runs show it too)."""
    gauge = guard.monitor.model_memory
    store = guard.calibration_store
    if gauge is None or store is None or gauge.chosen.origin == "configured" \
            or not measures_memory(guard.backend):
        return None
    result = store.get(machine_key(gauge.reader))
    if result is not None:
        gauge.set_chosen(chosen_from(result, f"calibrated earlier against "
                                             f"{store.server.describe()}"))
        guard.calibration = result
    return result


def source_snapshot(guard: CalibratedGuard) -> SourceSnapshot:
    """Every source now; /api/ps through the guard's own client."""
    gauge = guard.monitor.model_memory
    reading = guard.monitor.sample_now()
    snapshot = gauge.reader.snapshot(reading.container, ros_live_bytes=reading.ros_live_bytes,
                                     with_ps=False)
    try:
        ps = ollama_ps_memory(guard.client.ps(),
                              memory_scale=guard.readings.predictor.memory_scale)
    except OllamaError:
        return snapshot
    return dataclasses.replace(snapshot, ollama_ps=ps)


def settled_values(guard: CalibratedGuard, other_host_bytes: int) -> Dict[str, int]:
    """Source values once two samples a monitor period apart agree (or after a few)."""
    gauge = guard.monitor.model_memory
    previous: Optional[Mapping[str, int]] = None
    values: Dict[str, int] = {}
    for _ in range(_SETTLE_SAMPLES):
        values = source_values(source_snapshot(guard), gpu_name_pattern=gauge.gpu_name_pattern,
                               other_host_bytes=other_host_bytes)
        if previous is not None and all(
                abs(values.get(k, 0) - v) <= max(1, abs(v)) * 0.02 for k, v in previous.items()):
            break
        previous = values
        guard.actions.stop_event.wait(guard.monitor.period_s)
    return values


def _estimate(guard: CalibratedGuard, prediction: Any) -> int:
    """Return the metadata estimate of a model (a cached measurement may itself be wrong)."""
    estimates = guard.readings.metadata_estimates
    return int(estimates.get(prediction.model) or prediction.footprint_bytes)


def _measure_load(guard: CalibratedGuard, model: str,
                  other: int) -> Union[str, Tuple[Dict[str, int], Dict[str, int]]]:
    """Source values before and after loading model (unloaded again); a message on failure."""
    before = settled_values(guard, other)
    try:
        guard.client.load(model, keep_alive=-1, deadline_s=guard.settings.restart_deadline_s)
    except OllamaError as exc:
        message = f"memory sources not calibrated: loading {model} failed: {exc}"
        guard.log.decision(model, Decision(Action.KEEP, message), guard.monitor.latest(),
                           action="calibrate")
        return message
    after = settled_values(guard, other)
    guard.calibration_steps.append(f"calibrate {model}")
    guard.decider.unload_after_calibration(model)  # as the policy says
    guard.calibration_steps.append(Action.UNLOAD.value)
    return before, after


def choose_calibration(guard: CalibratedGuard, models: Sequence[str], *,
                       force: bool = False) -> Optional[CalibrationChoice]:
    """
    Return the models a calibration would load, or None when it is skipped.

    Skipped when sources are not configured or were given explicitly, or when this machine is
    calibrated already (a stored result is applied) and force is False. Reads only.
    """
    gauge = guard.monitor.model_memory
    if gauge is None or gauge.chosen.origin == "configured" or not measures_memory(guard.backend):
        return None  # an API-only backend reads no memory source to calibrate
    if not force and guard.calibration is not None:
        return None
    if not force and apply_stored(guard) is not None:
        return None
    predictions = {m: guard.predict(m) for m in dict.fromkeys(models)}
    known = [p for p in predictions.values() if p.known and p.footprint_bytes > 0]
    present = {str(t.get("name") or t.get("model") or "") for t in guard.readings.tags()}
    known = [p for p in known if any(same_model(p.model, n) for n in present)]
    if not known:
        return CalibrationChoice("", "", 0, ())
    smallest = min(known, key=lambda p: p.footprint_bytes)
    # Calibrate against the metadata estimate: a cached measurement may itself be wrong.
    predicted = _estimate(guard, smallest)
    budget = guard.monitor.sample_now().model_budget_bytes
    larger = [p for p in known if _SECOND_MIN_RATIO * predicted <= _estimate(guard, p)
              <= _SECOND_MAX_BUDGET_SHARE * budget]
    second = max(larger, key=lambda p: p.footprint_bytes).model if larger else ""
    return CalibrationChoice(smallest.model, second, predicted, tuple(known))


def planned_calibration(guard: CalibratedGuard, models: Sequence[str],
                        loaded: Sequence[str]) -> Tuple[List[str], Tuple[str, ...]]:
    """
    Return the steps a calibration of this run would take and what it would unload (dry runs).

    ([], ()) when no calibration would run; otherwise what the policy unloads first (never the
    models kept with keep_models_found_loaded), then each model loaded to read the sources and
    unloaded again.
    """
    choice = choose_calibration(guard, models)
    if choice is None or not choice.model:
        return [], ()
    steps: List[str] = []
    unloaded: Tuple[str, ...] = ()
    if loaded:
        decision = guard.policy.before_calibration(choice.model, loaded,
                                                   kept=guard.kept_found_loaded)
        if decision.action is Action.UNLOAD_OTHERS:
            steps.append(decision.action.value)
            unloaded = decision.models_to_unload
    return steps + choice.steps(), unloaded


def calibrate_guard(guard: CalibratedGuard, models: Sequence[str], *,
                    force: bool = False) -> Optional[str]:
    """
    Calibrate the guard's memory sources with the smallest requested model and a larger one.

    Skipped (None) when sources are not configured or were given explicitly, or when this
    machine is calibrated already and force is False. Returns the one-line result otherwise.
    Every unload is the policy's decision (GuardDecider); models found loaded that the user
    asked to keep are never unloaded. guard.calibration_steps says what was done.
    """
    choice = choose_calibration(guard, models, force=force)
    if choice is None:
        return None
    gauge = guard.monitor.model_memory
    if not choice.model:
        message = ("memory sources not calibrated: no requested model of known size is on the "
                   "server; keeping " + gauge.chosen.label)
        guard.log.decision("", Decision(Action.KEEP, message), guard.monitor.latest(),
                           action="calibrate")
        return message
    model, second, predicted, known = (choice.model, choice.second, choice.predicted_bytes,
                                       choice.known)
    guard.calibration_steps[:] = guard.decider.clear_for_calibration(
        model, guard.kept_found_loaded)
    started = time.monotonic()
    first = source_snapshot(guard)
    anon_before = first.cgroup.anon_bytes if first.cgroup is not None else 0
    other = (first.meminfo.used_bytes - first.ros_live_bytes - anon_before
             if first.meminfo is not None else 0)
    measured = _measure_load(guard, model, other)
    if isinstance(measured, str):
        return measured
    before, after = measured
    checks = []
    if second:
        again = _measure_load(guard, second, other)
        if isinstance(again, str):
            return again
        checks.append(LoadCheck(second, _estimate(guard, next(
            p for p in known if p.model == second)), *again))
    result = choose_sources(machine=machine_key(gauge.reader), model=model,
                            predicted_bytes=predicted, before=before, after=after,
                            other_host_bytes=other, stamp_s=time.time(), checks=checks)
    gauge.set_chosen(chosen_from(result, "calibrated in this run"))
    guard.calibration = result
    if guard.calibration_store is not None:
        guard.calibration_store.put(result)
    entry = guard.log.decision(model, Decision(Action.KEEP, result.describe()),
                               guard.monitor.sample_now(), predicted, action="calibrate")
    entry.duration_s = time.monotonic() - started
    return result.describe()
