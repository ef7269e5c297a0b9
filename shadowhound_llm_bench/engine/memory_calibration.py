"""
Memory-source calibration: load the smallest model (and a larger one) and keep what tracked them.

With more than one model requested, a second, larger model is loaded too (the largest whose
prediction is at most half the model budget and at least twice the smallest's): a source that
moved with the runner's own share but not with the model's memory tracks a small model only.

The result lives in `memory_calibration.json` beside the footprint cache, one entry per server
(core/server_key.py: backend, container or unit, Ollama version, machine) and machine reading
(host name, total memory, GPU reader): a robot calibrates on its first run against each server,
and a calibration made against another server (the simulator, another release) is never used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from ..adapters.memory_sources import MemorySourceReader
from ..adapters.ollama_client import OllamaError
from ..core.memory_calibration import (CalibrationResult, ChosenSources, LoadCheck,
                                       choose_sources)
from ..core.memory_sources import (MemorySourceError, SourceSnapshot, ollama_ps_memory,
                                   source_values)
from ..core.model_metadata import same_model
from ..core.policy import Action, Decision
from ..core.server_key import NO_SERVER, ServerKey
from .backend_record import measures_memory
from .state_file import check_format, load_state_file, save_state_file

if TYPE_CHECKING:  # the guard imports this module lazily; no cycle at run time
    from .memory_guard import PolicyMemoryGuard

_LOG = logging.getLogger(__name__)
_VERSION = 2  # 2: entries keyed by server and machine
CALIBRATION_FILE_NAME = "memory_calibration.json"
_SETTLE_SAMPLES = 3
# The second calibration model: at least this many times the smallest's prediction (a model of
# about the same size tells nothing new) and at most this share of the model budget.
_SECOND_MIN_RATIO = 2.0
_SECOND_MAX_BUDGET_SHARE = 0.5


def calibration_path_beside(footprint_cache_path: str) -> str:
    """Return the calibration file in the footprint cache's folder."""
    return os.path.join(os.path.dirname(os.path.abspath(footprint_cache_path)),
                        CALIBRATION_FILE_NAME)


def machine_key(reader: MemorySourceReader) -> str:
    """One key per machine: host name, total memory of its meminfo and the GPU reader."""
    try:
        total = str(reader.meminfo().total_bytes)
    except MemorySourceError:
        total = "unknown"
    gpu = "gpu" if reader.gpu is not None else "nogpu"
    return f"{socket.gethostname()}|{total}|{gpu}"


class CalibrationStore:
    """Calibration results of one server by machine; a damaged file is set aside, not lost."""

    def __init__(self, path: Optional[str], server: ServerKey = NO_SERVER) -> None:
        self.path = path
        self.server = server
        self._entries: Dict[str, Dict[str, Any]] = self._load()

    def _load(self) -> Dict[str, Dict[str, Any]]:
        def parse(data: Any) -> Dict[str, Dict[str, Any]]:
            machines = check_format(data, _VERSION, "machines")
            if not isinstance(machines, dict):
                raise ValueError("unexpected layout")
            return dict(machines)
        return load_state_file(self.path, parse, what="memory calibration") or {}

    def get(self, machine: str) -> Optional[CalibrationResult]:
        """Return the result kept for a machine, or None (also for a damaged entry)."""
        entry = self._entries.get(f"{self.server.token()}|{machine}")
        if entry is None:
            return None
        try:
            return CalibrationResult.from_dict(entry)
        except (KeyError, TypeError, ValueError) as exc:
            _LOG.warning("memory calibration of %s unreadable (%s): calibrating again", machine,
                         exc)
            return None

    def put(self, result: CalibrationResult) -> None:
        """Keep a result and write the file atomically (path None: for this run only)."""
        self._entries[f"{self.server.token()}|{result.machine}"] = {
            **result.to_dict(), "server": self.server.to_dict()}
        if self.path:
            save_state_file(self.path, {"version": _VERSION, "machines": self._entries},
                            what="memory calibration")


def chosen_from(result: CalibrationResult, origin: str) -> ChosenSources:
    """Return the monitor's sources from a calibration result."""
    return ChosenSources(sources=result.chosen, origin=origin, calibration=result,
                         other_host_bytes=result.other_host_bytes)


def apply_stored(guard: "PolicyMemoryGuard") -> Optional[CalibrationResult]:
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


def _snapshot(guard: "PolicyMemoryGuard") -> SourceSnapshot:
    """Every source now; /api/ps through the guard's own client."""
    gauge = guard.monitor.model_memory
    reading = guard.monitor.sample_now()
    snapshot = gauge.reader.snapshot(reading.container, ros_live_bytes=reading.ros_live_bytes,
                                     with_ps=False)
    try:
        ps = ollama_ps_memory(guard.client.ps(), memory_scale=guard.settings.memory_scale)
    except OllamaError:
        return snapshot
    return dataclasses.replace(snapshot, ollama_ps=ps)


def _settled_values(guard: "PolicyMemoryGuard", other_host_bytes: int) -> Dict[str, int]:
    """Source values once two samples a monitor period apart agree (or after a few)."""
    gauge = guard.monitor.model_memory
    previous: Optional[Mapping[str, int]] = None
    values: Dict[str, int] = {}
    for _ in range(_SETTLE_SAMPLES):
        values = source_values(_snapshot(guard), gpu_name_pattern=gauge.gpu_name_pattern,
                               other_host_bytes=other_host_bytes)
        if previous is not None and all(
                abs(values.get(k, 0) - v) <= max(1, abs(v)) * 0.02 for k, v in previous.items()):
            break
        previous = values
        guard._stop.wait(guard.monitor.period_s)
    return values


def _estimate(guard: "PolicyMemoryGuard", prediction: Any) -> int:
    """Return the metadata estimate of a model (a cached measurement may itself be wrong)."""
    return int(guard._metadata_estimates.get(prediction.model) or prediction.footprint_bytes)


def _measure_load(guard: "PolicyMemoryGuard", model: str,
                  other: int) -> Union[str, Tuple[Dict[str, int], Dict[str, int]]]:
    """Source values before and after loading model (unloaded again); a message on failure."""
    before = _settled_values(guard, other)
    try:
        guard.client.load(model, keep_alive=-1, deadline_s=guard.settings.restart_deadline_s)
    except OllamaError as exc:
        message = f"memory sources not calibrated: loading {model} failed: {exc}"
        guard._log_decision(model, Decision(Action.KEEP, message), guard.monitor.latest(),
                            action="calibrate")
        return message
    after = _settled_values(guard, other)
    guard._unload((model,), model)
    return before, after


def calibrate_guard(guard: "PolicyMemoryGuard", models: Sequence[str], *,
                    force: bool = False) -> Optional[str]:
    """
    Calibrate the guard's memory sources with the smallest requested model and a larger one.

    Skipped (None) when sources are not configured or were given explicitly, or when this
    machine is calibrated already and force is False. Returns the one-line result otherwise.
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
    present = {str(t.get("name") or t.get("model") or "") for t in guard._tags()}
    known = [p for p in known if any(same_model(p.model, n) for n in present)]
    if not known:
        message = ("memory sources not calibrated: no requested model of known size is on the "
                   "server; keeping " + gauge.chosen.label)
        guard._log_decision("", Decision(Action.KEEP, message), guard.monitor.latest(),
                            action="calibrate")
        return message
    smallest = min(known, key=lambda p: p.footprint_bytes)
    model = smallest.model
    # Calibrate against the metadata estimate: a cached measurement may itself be wrong.
    predicted = _estimate(guard, smallest)
    budget = guard.monitor.sample_now().model_budget_bytes
    larger = [p for p in known if _SECOND_MIN_RATIO * predicted <= _estimate(guard, p)
              <= _SECOND_MAX_BUDGET_SHARE * budget]
    second = max(larger, key=lambda p: p.footprint_bytes).model if larger else ""
    loaded = guard._loaded() or []
    if loaded:
        guard._unload(tuple(m.model for m in loaded), model)
    started = time.monotonic()
    first = _snapshot(guard)
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
    entry = guard._log_decision(model, Decision(Action.KEEP, result.describe()),
                                guard.monitor.sample_now(), predicted, action="calibrate")
    entry.duration_s = time.monotonic() - started
    return result.describe()
