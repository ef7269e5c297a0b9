"""
Energy per model and phase from power samples: load, prefill, decode, idle; J per generated token.

Samples are points (wall-clock s, W, degC, GPU clock, throttled); each stands for the time from
half-way after its predecessor to half-way before its successor (nearest-sample integration), so
a power step between two samples is split between them. A gap longer than `max_gap_s` is not
filled in: that time counts as not covered, and a phase covered less than half is not measured.
Phases come from the run log: a load is the client's load call, a test's prefill is request ->
first token (TTFT) and its decode first token -> last chunk, idle is the rest of the model's time.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

PHASES = ("load", "prefill", "decode", "idle")
MIN_COVERED_SHARE = 0.5


@dataclass(frozen=True, slots=True)  # a node keeps half an hour of them
class PowerSample:
    """One platform reading; None where the machine has no such sensor."""

    t_s: float  # wall clock (time.time())
    power_w: Optional[float] = None
    temp_c: Optional[float] = None
    gpu_freq_hz: Optional[float] = None
    gpu_freq_max_hz: Optional[float] = None
    throttled: Optional[bool] = None
    power_mode: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PowerSample":
        known = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        known["t_s"] = float(known.get("t_s") or 0.0)
        known["power_mode"] = str(known.get("power_mode") or "")
        return cls(**known)


@dataclass
class PhaseEnergy:
    """Power and energy of one phase of one model (or the whole run)."""

    duration_s: float = 0.0
    covered_s: float = 0.0
    energy_j: float = 0.0
    peak_w: Optional[float] = None
    peak_temp_c: Optional[float] = None
    throttled_s: float = 0.0
    power_modes: Tuple[str, ...] = ()

    @property
    def measured(self) -> bool:
        return self.duration_s > 0 and self.covered_s >= MIN_COVERED_SHARE * self.duration_s

    @property
    def mean_w(self) -> Optional[float]:
        return self.energy_j / self.covered_s if self.covered_s > 0 else None

    def add(self, other: "PhaseEnergy") -> None:
        self.duration_s += other.duration_s
        self.covered_s += other.covered_s
        self.energy_j += other.energy_j
        self.peak_w = _max(self.peak_w, other.peak_w)
        self.peak_temp_c = _max(self.peak_temp_c, other.peak_temp_c)
        self.throttled_s += other.throttled_s
        self.power_modes = tuple(dict.fromkeys(self.power_modes + other.power_modes))

    def to_dict(self) -> Optional[Dict[str, Any]]:
        """JSON form; None when power was not measured over this phase (never zero)."""
        if not self.measured:
            return None
        # Energy over the covered time, scaled to the whole phase (gaps at the same mean power).
        energy = self.energy_j * self.duration_s / self.covered_s
        return {"duration_s": round(self.duration_s, 4), "energy_j": round(energy, 4),
                "mean_w": round(self.mean_w or 0.0, 3), "peak_w": _round(self.peak_w, 3),
                "peak_temp_c": _round(self.peak_temp_c, 2),
                "throttled_s": round(self.throttled_s, 3),
                "power_modes": list(self.power_modes)}


def _max(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)


def iso_to_s(stamp: Any) -> Optional[float]:
    """Wall-clock seconds of an ISO-8601 stamp from the run log; None when it does not parse."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class SampleSeries:
    """Samples sorted by time with the span each one stands for."""

    def __init__(self, samples: Iterable[PowerSample], *, max_gap_s: float = 1.0) -> None:
        self.samples = sorted(samples, key=lambda s: s.t_s)
        times = [s.t_s for s in self.samples]
        self.times = times
        self.lo: List[float] = []
        self.hi: List[float] = []
        half_cap = max_gap_s / 2.0
        for i, t in enumerate(times):
            before = (t - times[i - 1]) / 2.0 if i > 0 else None
            after = (times[i + 1] - t) / 2.0 if i + 1 < len(times) else None
            before = after if before is None else before
            after = before if after is None else after
            self.lo.append(t - min(before if before is not None else 0.0, half_cap))
            self.hi.append(t + min(after if after is not None else 0.0, half_cap))

    def __len__(self) -> int:
        return len(self.samples)

    def has_power(self) -> bool:
        return any(s.power_w is not None for s in self.samples)

    def integrate(self, start_s: float, end_s: float) -> PhaseEnergy:
        """Power, energy, temperature and throttling over [start_s, end_s]."""
        out = PhaseEnergy(duration_s=max(0.0, end_s - start_s))
        if end_s <= start_s or not self.samples:
            return out
        first = max(0, bisect.bisect_left(self.times, start_s) - 1)
        modes: List[str] = []
        for i in range(first, len(self.samples)):
            lo, hi = self.lo[i], self.hi[i]
            if lo >= end_s:
                break
            overlap = min(hi, end_s) - max(lo, start_s)
            if overlap <= 0:
                continue
            sample = self.samples[i]
            if sample.power_w is not None:
                out.covered_s += overlap
                out.energy_j += sample.power_w * overlap
                out.peak_w = _max(out.peak_w, sample.power_w)
            out.peak_temp_c = _max(out.peak_temp_c, sample.temp_c)
            if sample.throttled:
                out.throttled_s += overlap
            if sample.power_mode and sample.power_mode not in modes:
                modes.append(sample.power_mode)
        out.power_modes = tuple(modes)
        return out


# ----------------------------------------------------------------------------- from the log
def model_phase_intervals(recs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Return the model's window and its phase intervals (measured tests only) from its records."""
    window_start: Optional[float] = None
    window_end: Optional[float] = None
    phases: Dict[str, List[Tuple[float, float]]] = {p: [] for p in PHASES}
    warmup: List[Tuple[float, float]] = []
    tests: List[Tuple[str, float, float, int]] = []  # task, start, end, tokens
    tokens = 0
    for rec in recs:
        kind = rec.get("type")
        stamp = iso_to_s(rec.get("stamp"))
        if kind == "model_start" and stamp is not None:
            window_start = stamp if window_start is None else min(window_start, stamp)
        elif kind == "model_end" and stamp is not None:
            window_end = stamp
        elif kind == "load" and stamp is not None:
            took = rec.get("client_s")
            if isinstance(took, (int, float)) and took > 0:
                phases["load"].append((stamp - float(took), stamp))
        elif kind == "test":
            started = iso_to_s(rec.get("started"))
            metrics = rec.get("metrics") or {}
            ttft_ms, e2e_s = metrics.get("ttft_ms"), metrics.get("e2e_latency_s")
            if started is None or rec.get("status") != "ok" or not isinstance(e2e_s, (int, float)):
                continue
            first = started + (float(ttft_ms) / 1000.0 if isinstance(ttft_ms, (int, float))
                               else 0.0)
            end = started + float(e2e_s)
            if rec.get("warmup"):
                warmup.append((started, end))
                continue
            phases["prefill"].append((started, first))
            phases["decode"].append((first, end))
            count = metrics.get("eval_count")
            count = int(count) if isinstance(count, (int, float)) else 0
            tokens += count
            tests.append((str(rec.get("task") or ""), started, end, count))
    return {"window": (window_start, window_end), "phases": phases, "warmup": warmup,
            "tokens": tokens, "tests": tests}


def model_energy(series: SampleSeries, recs: Sequence[Mapping[str, Any]]) -> Optional[
        Dict[str, Any]]:
    """
    Energy record of one model: per phase, J/token, or None when no power was measured.

    j_per_token = (prefill + decode energy of the measured tests) / their generated tokens;
    decode_j_per_token counts decode energy only; idle is the model's window minus its load,
    tests and warm-up (unloads, waits, scoring).
    """
    if not series.has_power():
        return None
    spans = model_phase_intervals(recs)
    per_phase: Dict[str, PhaseEnergy] = {p: PhaseEnergy() for p in PHASES}
    for phase in ("load", "prefill", "decode"):
        for start, end in spans["phases"][phase]:
            per_phase[phase].add(series.integrate(start, end))
    warm = PhaseEnergy()
    for start, end in spans["warmup"]:
        warm.add(series.integrate(start, end))
    window_start, window_end = spans["window"]
    if window_start is not None and window_end is not None and window_end > window_start:
        whole = series.integrate(window_start, window_end)
        busy = PhaseEnergy()
        for phase in ("load", "prefill", "decode"):
            busy.add(per_phase[phase])
        busy.add(warm)
        idle = per_phase["idle"]
        idle.duration_s = max(0.0, whole.duration_s - busy.duration_s)
        idle.covered_s = max(0.0, whole.covered_s - busy.covered_s)
        idle.energy_j = max(0.0, whole.energy_j - busy.energy_j)
        idle.peak_w, idle.peak_temp_c = whole.peak_w, whole.peak_temp_c
        idle.throttled_s = max(0.0, whole.throttled_s - busy.throttled_s)
        idle.power_modes = whole.power_modes
    phases_out = {p: per_phase[p].to_dict() for p in PHASES}
    tokens = int(spans["tokens"])
    gen = PhaseEnergy()
    gen.add(per_phase["prefill"])
    gen.add(per_phase["decode"])
    gen_dict = gen.to_dict()
    decode_dict = phases_out["decode"]
    out: Dict[str, Any] = {
        "phases": phases_out,
        "generated_tokens": tokens,
        "j_per_token": (round(gen_dict["energy_j"] / tokens, 5)
                        if gen_dict and tokens > 0 else None),
        "decode_j_per_token": (round(decode_dict["energy_j"] / tokens, 5)
                               if decode_dict and tokens > 0 else None),
        "mean_w": gen_dict["mean_w"] if gen_dict else None,
        "peak_w": _max_of(p and p.get("peak_w") for p in phases_out.values()),
        "peak_temp_c": _max_of(p and p.get("peak_temp_c") for p in phases_out.values()),
        "throttled_s": round(sum((p or {}).get("throttled_s", 0.0)
                                 for p in phases_out.values()), 3),
        "power_modes": list(dict.fromkeys(m for p in phases_out.values() if p
                                          for m in p.get("power_modes") or [])),
        # Each measured test's own J/token (its energy / its tokens), for spread and history.
        "tests": [{"task": task, "j_per_token": round(part.energy_j / count, 5)}
                  for task, start, end, count in spans["tests"]
                  for part in [series.integrate(start, end)] if count > 0 and part.measured],
    }
    return out


def _max_of(values: Iterable[Any]) -> Optional[float]:
    best: Optional[float] = None
    for v in values:
        if isinstance(v, (int, float)):
            best = _max(best, float(v))
    return best


def run_energy(series: SampleSeries, start_s: Optional[float],
               end_s: Optional[float]) -> Optional[Dict[str, Any]]:
    """Whole-run power record; None when the samples carry no power."""
    if not len(series):
        return None
    start = series.times[0] if start_s is None else start_s
    end = series.times[-1] if end_s is None else end_s
    whole = series.integrate(start, end)
    out = whole.to_dict() if series.has_power() else None
    if out is None:
        out = {"duration_s": round(whole.duration_s, 4), "energy_j": None, "mean_w": None,
               "peak_w": None, "peak_temp_c": _round(whole.peak_temp_c, 2),
               "throttled_s": round(whole.throttled_s, 3),
               "power_modes": list(whole.power_modes)}
    out["samples"] = len(series)
    return out


def window_state(series: SampleSeries, start_s: Optional[float],
                 end_s: Optional[float]) -> Dict[str, Any]:
    """Throttling, temperature and power modes over a window (a canary request)."""
    if start_s is None or end_s is None or not len(series):
        return {"measured": False}
    part = series.integrate(start_s, end_s)
    return {"measured": True, "throttled_s": round(part.throttled_s, 3),
            "duration_s": round(part.duration_s, 3),
            "peak_temp_c": _round(part.peak_temp_c, 2), "power_modes": list(part.power_modes)}
