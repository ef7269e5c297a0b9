"""
The memory-source columns of the seed table, judged against the simulator's ground truth.

- wrong cleanup verdicts: computed here from the scenario's leak list, and replaced in the seed
  table by the independent referee's judgement (benchmarks/seed_table_referee.py: the model
  memory really held after the model versus before it, the driver's pool included);
- drop-caches calls and reclaim time (unload until the host's MemAvailable came back), from the
  guard's records;
- prediction error: the product's predicted footprint against the simulator's ground truth,
  which is Ollama's own estimate (sim/ollama_estimate.py), not the product's formula;
- calibration: the sources the product chose on the machine.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings

GIB = 1024 ** 3


@dataclass(frozen=True)
class MemoryColumns:
    """One configuration's memory-source numbers."""

    cleanup_verdicts: int
    wrong_cleanup_verdicts: int
    drop_caches_calls: int
    reclaim_s_median: Optional[float]
    prediction_error_median: Optional[float]  # (predicted - truth) / truth, median over models
    measurement_error_median: Optional[float]  # (measured - truth) / truth
    rejected_measurements: int
    calibration: str
    calibration_s: float = 0.0  # once per machine; not counted as management time
    wrong_note: str = ""


def memory_source_settings_for(sim: Any) -> Optional[MemorySourceSettings]:
    """Point the product at the simulated machine's meminfo, nvidia-smi and drop_caches."""
    machine = getattr(sim, "machine", None)
    if machine is None:
        return None
    return MemorySourceSettings(meminfo_path=machine.meminfo_path,
                                nvidia_smi_command=machine.nvidia_smi_path,
                                drop_caches_path=machine.drop_caches_path)


def ground_truth_bytes(scenario: Any, model: str, *, num_ctx: int) -> Optional[int]:
    """Return a model's footprint on the simulated machine: Ollama's estimate, scaled."""
    from shadowhound_llm_bench.sim.catalog import normalise_name
    from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory

    spec = scenario.catalog.get(normalise_name(model))
    if spec is None:
        return None
    estimate = estimate_model_memory(spec, num_ctx=num_ctx, num_parallel=scenario.num_parallel,
                                     kv_cache_type=scenario.kv_cache_type,
                                     on_gpu=scenario.memory_model == "unified")
    return int(estimate.total_bytes * scenario.memory_scale)


def _leaked_models(scenario: Any, min_release_fraction: float) -> Dict[str, float]:
    leaks = dict((getattr(scenario, "faults", {}) or {}).get("leak") or {})
    return {m: float(f) for m, f in leaks.items() if float(f) > 1.0 - min_release_fraction}


def _median(values: Sequence[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def memory_columns(guard: Any, scenario: Any, *, num_ctx: int) -> MemoryColumns:
    """Judge the guard's records of one run against the simulator's ground truth."""
    fraction = guard.settings.cleanup_min_release_fraction
    leaked = _leaked_models(scenario, fraction)
    verdicts = wrong = 0
    wrong_models: List[str] = []
    reclaims: List[float] = []
    predicted_errors: List[float] = []
    measured_errors: List[float] = []
    rejected = drops = 0
    for record in guard.records():
        drops += record.drop_caches_calls
        if record.measurement_rejected_reason:
            rejected += 1
        if record.reclaim_s is not None:
            reclaims.append(record.reclaim_s)
        truth = ground_truth_bytes(scenario, record.model, num_ctx=num_ctx)
        if truth and record.predicted_footprint_bytes:
            predicted_errors.append((record.predicted_footprint_bytes - truth) / truth)
        if truth and record.measured_footprint_bytes:
            measured_errors.append((record.measured_footprint_bytes - truth) / truth)
        if record.cleanup_successful is None:
            continue
        verdicts += 1
        truly_released = record.model not in leaked
        if record.cleanup_successful != truly_released:
            wrong += 1
            wrong_models.append(f"{record.model} judged "
                                f"{'released' if record.cleanup_successful else 'stayed up'}")
    calibration = getattr(guard, "calibration", None)
    if calibration is not None:
        chosen = " + ".join(calibration.chosen) + ("" if calibration.tracked else " (fallback)")
    elif getattr(guard.monitor, "model_memory", None) is not None:
        chosen = guard.monitor.model_memory.chosen.label + " (not calibrated)"
    else:
        chosen = "cgroup_working_set (sources off)"
    calibration_s = sum(d.duration_s for d in guard.decisions() if d.action == "calibrate")
    return MemoryColumns(
        calibration_s=calibration_s, cleanup_verdicts=verdicts, wrong_cleanup_verdicts=wrong,
        drop_caches_calls=drops,
        reclaim_s_median=_median(reclaims),
        prediction_error_median=_median([abs(e) for e in predicted_errors]),
        measurement_error_median=_median([abs(e) for e in measured_errors]),
        rejected_measurements=rejected, calibration=chosen,
        wrong_note="; ".join(wrong_models))


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def memory_table_lines(labelled: Sequence[Any], *, markdown: bool) -> List[str]:
    """Format the memory columns of each (label, MemoryColumns) pair as text or Markdown."""
    header = ["Configuration", "Wrong cleanup verdicts (referee)", "Drop-caches calls",
              "Reclaim s (median)", "Prediction error vs truth", "Measured error vs truth",
              "Rejected measurements", "Calibration (s, once per machine)"]
    body = []
    for label, c in labelled:
        body.append([label, f"{c.wrong_cleanup_verdicts}/{c.cleanup_verdicts}",
                     str(c.drop_caches_calls),
                     "-" if c.reclaim_s_median is None else f"{c.reclaim_s_median:.2f}",
                     _pct(c.prediction_error_median), _pct(c.measurement_error_median),
                     str(c.rejected_measurements),
                     f"{c.calibration} ({c.calibration_s:.1f} s)"])
    if markdown:
        return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    return (["  ".join(h.ljust(w) for h, w in zip(header, widths))]
            + ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in body])
