"""
Which memory sources track a model on this machine: chosen from measured loads.

Calibration loads the smallest requested model (and, when more are requested, a larger one)
and compares how far each source moved with the predicted footprint. A set of sources "tracks"
when its summed movement is 0.5-2x the prediction of every model loaded, and no member moved
down. A larger model tells apart what grows with the model from what does not: the runner's own
CPU-side share charged to the container may be 0.5-2x a small model's prediction on a
unified-memory machine, but it stays the same while the device memory grows tenfold. The chosen
sources are summed into the model memory the policy works with, so two sources that both saw
the same pages are never chosen together (no term counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .memory_sources import (CGROUP_ANON, CGROUP_MAPPED, CGROUP_WORKING_SET, GPU_PROCESSES,
                             HOST_USED, MEASURING_SOURCES, NVMAP, OLLAMA_PS)
from ..units import to_gib

TRACK_LOW = 0.5
TRACK_HIGH = 2.0

# Candidate source sets, first match wins. A set tracks when the sum of its movements does and
# every member moved (a member that did not move adds nothing but noise).
_CANDIDATES: Tuple[Tuple[Tuple[str, ...], str], ...] = (
    ((CGROUP_ANON,), "the container's memory cgroup is charged with the model "
                     "(a cgroup-charged machine: CPU-only or discrete-GPU Ollama)"),
    ((CGROUP_ANON, GPU_PROCESSES), "GPU memory is held outside the container's cgroup "
                                   "(unified memory): its anonymous pages plus per-process "
                                   "GPU memory"),
    ((CGROUP_ANON, NVMAP), "GPU memory is held outside the container's cgroup: its "
                           "anonymous pages plus NvMap"),
    ((CGROUP_MAPPED,), "the container's memory cgroup holds the model as anonymous pages plus "
                       "mapped file pages (mmap'd weights: CPU-only Ollama)"),
    ((HOST_USED,), "only the host's MemAvailable saw the model (no per-process GPU numbers)"),
    ((CGROUP_WORKING_SET,), "the container's working set saw the model"),
)


@dataclass(frozen=True)
class SourceMovement:
    """How far one source moved while the calibration model loaded."""

    source: str
    before_bytes: int
    after_bytes: int
    predicted_bytes: int

    @property
    def delta_bytes(self) -> int:
        """Bytes the source rose by."""
        return self.after_bytes - self.before_bytes

    @property
    def ratio(self) -> float:
        """Movement over the prediction (1.0 = moved exactly by the predicted footprint)."""
        return self.delta_bytes / self.predicted_bytes if self.predicted_bytes > 0 else 0.0

    @property
    def tracks(self) -> bool:
        """Tell whether this source alone moved by 0.5-2x the prediction."""
        return TRACK_LOW <= self.ratio <= TRACK_HIGH


@dataclass(frozen=True)
class CalibrationResult:
    """The sources chosen on one machine, and the movements they were chosen from."""

    machine: str
    model: str
    predicted_bytes: int
    movements: Tuple[SourceMovement, ...]
    chosen: Tuple[str, ...]
    reason: str
    tracked: bool  # False: no source tracked; the working set is kept as a last resort
    other_host_bytes: int = 0  # host memory used by neither ROS nor models (for host_used)
    stamp_s: float = 0.0
    note: str = ""
    # Further loads the chosen set was checked against: (model, predicted bytes, movements).
    checks: Tuple[Tuple[str, int, Tuple[SourceMovement, ...]], ...] = ()

    def describe(self) -> str:
        """One line for a plan or a report."""
        moved = ", ".join(f"{m.source} {to_gib(m.delta_bytes):+.2f} GiB ({m.ratio:.2f}x)"
                          for m in self.movements)
        head = (f"memory sources {' + '.join(self.chosen)}" if self.tracked else
                f"no source tracked the model, falling back to {' + '.join(self.chosen)}")
        text = (f"{head}: {self.reason}; calibrated with {self.model} (predicted "
                f"{to_gib(self.predicted_bytes):.2f} GiB): {moved or 'nothing measured'}")
        for model, predicted, movements in self.checks:
            chosen = sum(m.delta_bytes for m in movements if m.source in self.chosen)
            text += (f"; checked with {model} (predicted {to_gib(predicted):.2f} GiB): the "
                     f"chosen sources moved {to_gib(chosen):+.2f} GiB")
        return text

    def to_dict(self) -> Dict[str, Any]:
        """JSON form (state file and reports)."""
        return {
            "machine": self.machine, "model": self.model,
            "predicted_bytes": self.predicted_bytes, "chosen": list(self.chosen),
            "reason": self.reason, "tracked": self.tracked,
            "other_host_bytes": self.other_host_bytes, "stamp_s": self.stamp_s,
            "note": self.note,
            "movements": _movements_dict(self.movements),
            "checks": [{"model": model, "predicted_bytes": predicted,
                        "movements": _movements_dict(movements)}
                       for model, predicted, movements in self.checks],
            "summary": self.describe(),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "CalibrationResult":
        """Parse the JSON form; ValueError/KeyError/TypeError on a damaged entry."""
        predicted = int(data["predicted_bytes"])
        chosen = tuple(str(s) for s in data["chosen"])
        if not chosen or any(s not in MEASURING_SOURCES for s in chosen):
            raise ValueError(f"unknown chosen sources {chosen}")
        movements = tuple(
            SourceMovement(str(m["source"]), int(m["before_bytes"]), int(m["after_bytes"]),
                           predicted) for m in data.get("movements") or [])
        checks = tuple(
            (str(c["model"]), int(c["predicted_bytes"]), tuple(
                SourceMovement(str(m["source"]), int(m["before_bytes"]), int(m["after_bytes"]),
                               int(c["predicted_bytes"])) for m in c.get("movements") or []))
            for c in data.get("checks") or [])
        return CalibrationResult(
            checks=checks,
            machine=str(data["machine"]), model=str(data["model"]), predicted_bytes=predicted,
            movements=movements, chosen=chosen, reason=str(data.get("reason", "")),
            tracked=bool(data.get("tracked", True)),
            other_host_bytes=int(data.get("other_host_bytes", 0)),
            stamp_s=float(data.get("stamp_s", 0.0)), note=str(data.get("note", "")))


def _movements_dict(movements: Sequence[SourceMovement]) -> list:
    return [{"source": m.source, "before_bytes": m.before_bytes, "after_bytes": m.after_bytes,
             "delta_bytes": m.delta_bytes, "ratio": round(m.ratio, 4)} for m in movements]


@dataclass(frozen=True)
class LoadCheck:
    """One further load the chosen set must track: its model, prediction and source values."""

    model: str
    predicted_bytes: int
    before: Mapping[str, int]
    after: Mapping[str, int]


def set_tracks(members: Sequence[str], movements: Sequence[SourceMovement],
               predicted_bytes: int) -> bool:
    """
    Tell whether a source set tracked one load.

    Every member was read, none moved down (a member that fell while the model loaded measures
    something else: accepting it lets a rise elsewhere pass), every member of a larger set rose,
    and the sum is 0.5-2x the prediction.
    """
    by_source = {m.source: m for m in movements}
    if predicted_bytes <= 0 or not all(s in by_source for s in members):
        return False
    parts = [by_source[s] for s in members]
    if any(p.delta_bytes < 0 for p in parts):
        return False
    if len(parts) > 1 and any(p.delta_bytes <= 0 for p in parts):
        return False
    total = sum(p.delta_bytes for p in parts)
    return TRACK_LOW <= total / predicted_bytes <= TRACK_HIGH


def movements_of(before: Mapping[str, int], after: Mapping[str, int],
                 predicted_bytes: int) -> Tuple[SourceMovement, ...]:
    """Movement of every source present both before and after the load."""
    order = list(MEASURING_SOURCES) + [OLLAMA_PS]
    return tuple(SourceMovement(s, int(before[s]), int(after[s]), predicted_bytes)
                 for s in order if s in before and s in after)


def choose_sources(*, machine: str, model: str, predicted_bytes: int,
                   before: Mapping[str, int], after: Mapping[str, int],
                   other_host_bytes: int = 0, stamp_s: float = 0.0,
                   checks: Sequence[LoadCheck] = ()) -> CalibrationResult:
    """
    Pick the first candidate set that tracks the load and every further load in checks.

    cgroup_anon alone comes first: when it tracks, GPU memory is charged to the container (or
    there is none), so adding per-process GPU memory would count the model twice.
    """
    if predicted_bytes <= 0:
        raise ValueError("calibration needs a model of known predicted size")
    movements = movements_of(before, after, predicted_bytes)
    by_source = {m.source: m for m in movements}
    further = tuple((c.model, c.predicted_bytes,
                     movements_of(c.before, c.after, c.predicted_bytes)) for c in checks)
    for members, reason in _CANDIDATES:
        if not set_tracks(members, movements, predicted_bytes) or not all(
                set_tracks(members, moved, predicted) for _, predicted, moved in further):
            continue
        note = ""
        if members == (CGROUP_ANON,) and by_source.get(GPU_PROCESSES) is not None \
                and by_source[GPU_PROCESSES].tracks:
            note = ("per-process GPU memory moved as well: the same pages, counted once "
                    "(from the cgroup)")
        return CalibrationResult(machine, model, predicted_bytes, movements, members,
                                 reason, True, other_host_bytes, stamp_s, note, further)
    fallback = (CGROUP_WORKING_SET,)
    return CalibrationResult(
        machine, model, predicted_bytes, movements, fallback,
        f"no source moved by {TRACK_LOW:g}-{TRACK_HIGH:g}x the prediction; cleanup verdicts "
        "and footprints may be wrong on this machine", False, other_host_bytes, stamp_s,
        checks=further)


def model_memory_bytes(values: Mapping[str, int], chosen: Sequence[str]) -> Optional[int]:
    """Sum of the chosen sources; None when one of them could not be read."""
    if not chosen or any(s not in values for s in chosen):
        return None
    return int(sum(values[s] for s in chosen))


@dataclass
class ChosenSources:
    """The sources the monitor sums into model memory, and where that choice came from."""

    sources: Tuple[str, ...] = (CGROUP_WORKING_SET,)
    origin: str = "default (not calibrated)"  # default | configured | calibrated
    calibration: Optional[CalibrationResult] = None
    other_host_bytes: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Return the sources as one word for readings and records."""
        return "+".join(self.sources)

    def needs(self, source: str) -> bool:
        """Tell whether a source must be read for model memory."""
        return source in self.sources


def blind_to_first_load(model: str, seen_bytes: int, predicted_bytes: int,
                        label: str) -> Optional[str]:
    """Why the chosen sources must be chosen again after a model's first load, or None."""
    if predicted_bytes <= 0 or seen_bytes >= TRACK_LOW * predicted_bytes:
        return None
    return (f"recalibrate: the chosen sources {label} saw {to_gib(max(0, seen_bytes)):.3f} GiB "
            f"of the first load of {model}, {max(0, seen_bytes) / predicted_bytes:.2f}x its "
            f"prediction {to_gib(predicted_bytes):.3f} GiB (under {TRACK_LOW:g}x): they are blind "
            "to its memory; the sources are chosen again with it before its footprint is "
            "trusted, and this measurement is not kept")
