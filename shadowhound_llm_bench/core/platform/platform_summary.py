"""The run summary's machine, power and energy parts, rebuilt from the run log's records."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from .energy_accounting import PowerSample, SampleSeries, iso_to_s, model_energy, run_energy
from .energy_accounting import window_state
from .slowdown_attribution import attribute_slowdown

NOT_MEASURED = "not measured"


def machine_records(records: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Return the latest session's machine records by when (start, end)."""
    out: Dict[str, Dict[str, Any]] = {}
    for rec in records:
        if rec.get("type") == "run_start":
            out = {}
        elif rec.get("type") == "machine":
            out[str(rec.get("when") or "start")] = dict(rec)
    return out


def machine_bandwidth(records: Sequence[Mapping[str, Any]]) -> Optional[float]:
    """Return the memory bandwidth the machine record found (table or parameter), if any."""
    start = machine_records(records).get("start") or {}
    value = (start.get("machine") or {}).get("memory_bandwidth_bytes_per_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def sample_series(records: Sequence[Mapping[str, Any]]) -> SampleSeries:
    samples: List[PowerSample] = []
    for rec in records:
        if rec.get("type") == "platform":
            samples += [PowerSample.from_dict(s) for s in rec.get("samples") or []]
    return SampleSeries(samples)


def platform_summary(records: Sequence[Mapping[str, Any]],
                     model_records: Mapping[str, Sequence[Mapping[str, Any]]]
                     ) -> Dict[str, Any]:
    """
    Return {"machine", "platform", "energy": {model: energy or None}, "samples"}.

    platform holds the sensor source, warnings, the whole run's power and the slowdown
    attribution; a model's energy is None when power was not measured (reports: "not measured").
    """
    machines = machine_records(records)
    start = machines.get("start") or {}
    end = machines.get("end") or {}
    series = sample_series(records)
    energies: Dict[str, Optional[Dict[str, Any]]] = {
        model: model_energy(series, recs) for model, recs in model_records.items()}
    run_start_s = next((iso_to_s(r.get("stamp")) for r in records
                        if r.get("type") == "run_start"), None)
    run_end_s = next((iso_to_s(r.get("stamp")) for r in reversed(records)
                      if r.get("type") == "run_end"), None)
    canary_state: Dict[str, Dict[str, Any]] = {}
    verdict: Optional[Mapping[str, Any]] = None
    for rec in records:
        if rec.get("type") == "canary":
            canary_state[str(rec.get("when"))] = window_state(
                series, iso_to_s(rec.get("started")),
                iso_to_s(rec.get("ended") or rec.get("stamp")))
        elif rec.get("type") == "run_end" and rec.get("canary"):
            verdict = rec.get("canary")
    platform: Dict[str, Any] = {
        "sensor_source": start.get("sensor_source") or ("none" if start else ""),
        "warnings": list(start.get("warnings") or []),
        "run": run_energy(series, run_start_s, run_end_s),
        "canary": canary_state,
    }
    if start or len(series):
        platform["slowdown"] = attribute_slowdown(
            canary_verdict=verdict, canary_state=canary_state,
            machine_start=start.get("machine"), machine_end=end.get("machine"),
            model_energy=energies)
    machine = dict(start.get("machine") or {})
    if end.get("machine"):
        machine["power_mode_at_end"] = (end["machine"] or {}).get("power_mode", "")
    return {"machine": machine, "platform": platform, "energy": energies,
            "samples": [s.to_dict() for s in series.samples]}
