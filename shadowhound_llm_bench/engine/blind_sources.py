"""
After a model's first load: choose the memory sources again when they were blind to it.

Calibration with one small model may choose a set that sees only the runner's own share (a
unified machine charging the runner's CPU memory to the container). When a new model's first
load shows less than 0.5x its prediction through the chosen sources (the rule:
memory_calibration.blind_to_first_load), the decision is recorded, the sources are chosen
again from this model's own movement (every source read with it loaded, then after it is
unloaded), and its footprint is taken through the new choice; the blind one is never cached.
"""

from __future__ import annotations

import time
from typing import Optional, Protocol, Sequence, Set

from ..core.memory.footprint_check import rejected_measurement
from ..core.memory.memory_calibration import (blind_to_first_load, choose_sources,
                                              model_memory_bytes)
from ..core.decider.decision import Action, Decision
from .backend_record import measures_memory
from .memory_calibration import (CalibratedGuard, chosen_from, machine_key, settled_values,
                                 source_snapshot)


class CheckedGuard(CalibratedGuard, Protocol):
    """What the first-load check uses of the memory guard, beyond what calibration uses."""

    first_loads_checked: Set[str]


def recheck_first_load(guard: CheckedGuard, model: str,
                       seen_bytes: int) -> Optional[int]:
    """
    Recalibrate when the chosen sources saw under 0.5x of a model's first load.

    Returns the footprint measured through the sources chosen again (the model is unloaded to
    take it), or None when nothing was done (calibration not used here, set configured, the
    model checked already, the sources not blind to it).
    """
    gauge = guard.monitor.model_memory
    checked = guard.first_loads_checked
    if gauge is None or gauge.chosen.origin == "configured" or model in checked or \
            not measures_memory(guard.backend):
        return None
    checked.add(model)
    predicted = int(guard.readings.metadata_estimates.get(model) or 0)
    why = blind_to_first_load(model, seen_bytes, predicted, gauge.chosen.label)
    if why is None:
        return None
    started = time.monotonic()
    guard.log.decision(model, Decision(Action.KEEP, why), guard.monitor.latest(), predicted,
                       action="calibrate")
    first = source_snapshot(guard)
    anon = first.cgroup.anon_bytes if first.cgroup is not None else 0
    other = (first.meminfo.used_bytes - first.ros_live_bytes - anon
             if first.meminfo is not None else 0)
    loaded = settled_values(guard, other)
    guard.decider.unload_after_calibration(model, why="recalibration")  # as the policy says
    unloaded = settled_values(guard, other)
    result = choose_sources(machine=machine_key(gauge.reader), model=model,
                            predicted_bytes=predicted, before=unloaded, after=loaded,
                            other_host_bytes=other, stamp_s=time.time())
    gauge.set_chosen(chosen_from(result, f"calibrated again with {model} in this run"))
    guard.calibration = result
    if guard.calibration_store is not None:
        guard.calibration_store.put(result)
    entry = guard.log.decision(model, Decision(Action.KEEP, result.describe()),
                               guard.monitor.sample_now(), predicted, action="calibrate")
    entry.duration_s = time.monotonic() - started
    seen_now = model_memory_bytes(loaded, result.chosen)
    before_now = model_memory_bytes(unloaded, result.chosen)
    if not result.tracked or seen_now is None or before_now is None:
        return None
    return seen_now - before_now


def kept_measurement(guard: CheckedGuard, model: str, footprint_bytes: int,
                     evicted: Sequence[str]) -> Optional[int]:
    """
    Return the footprint that may be cached for a model, or None (rejection recorded).

    A measurement outside 0.5-2x is never kept; one under 0.5x of a first load through
    calibrated sources chooses them again, and the footprint through the new choice is
    kept when it is itself 0.5-2x the prediction.
    """
    record = guard.log.record_for(model)
    rejected = rejected_measurement(
        model=model, measured_bytes=footprint_bytes, evicted_models=evicted,
        metadata_estimate_bytes=guard.readings.metadata_estimates.get(model, 0))
    if not rejected:
        return footprint_bytes
    record.measurement_rejected_reason = rejected
    guard.log.decision(model, Decision(Action.KEEP, rejected), guard.monitor.latest(),
                       record.predicted_footprint_bytes, action="footprint_rejected")
    again = None if evicted else recheck_first_load(guard, model, footprint_bytes)
    if again is None or rejected_measurement(
            model=model, measured_bytes=again,
            metadata_estimate_bytes=guard.readings.metadata_estimates.get(model, 0)):
        return None
    record.measured_footprint_bytes = again
    record.memory_source = guard.monitor.model_memory.chosen.label
    return again
