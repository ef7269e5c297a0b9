"""
The cheapest management schedule for the seed's model order, computed offline after the run.

It knows what no policy knows beforehand: every model's real footprint (the largest /api/ps
size the server reported for it during the run), the container's memory limit, the server's own
memory with nothing loaded, and what each unload and restart cost when the product made them.
Before each model it may unload any of the cached models or restart the server; the server
itself evicts its least recently used model when it already holds its maximum (Ollama's default
is 3 on a CPU), at no cost. A schedule is feasible when, before every load, the server's memory
plus the footprints of the models still loaded plus the new model's stays within the limit. No
cleanup is needed after the last model.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from itertools import combinations
from typing import Dict, List, Mapping, Optional, Sequence, Tuple


@dataclass(frozen=True)
class OracleInputs:
    """What the oracle schedules from (bytes and seconds measured in the run)."""

    order: Tuple[str, ...]
    footprint_bytes: Mapping[str, int]
    limit_bytes: int
    server_bytes: int
    unload_s: Mapping[str, float]  # per model; models missing here cost default_unload_s
    default_unload_s: float
    restart_s: float
    max_loaded: int = 3


@dataclass(frozen=True)
class OracleSchedule:
    """The cheapest schedule: its management seconds and actions, or why none exists."""

    feasible: bool
    management_s: float
    actions: Tuple[str, ...]
    note: str = ""


def _fits(inputs: OracleInputs, loaded: Sequence[str], model: str) -> bool:
    used = inputs.server_bytes + sum(inputs.footprint_bytes[m] for m in loaded)
    return used + inputs.footprint_bytes[model] <= inputs.limit_bytes


def _server_eviction(loaded: Tuple[str, ...], max_loaded: int) -> Tuple[str, ...]:
    """Return what the server keeps before a new load: it drops its least recently used."""
    return loaded[len(loaded) - max_loaded + 1:] if len(loaded) >= max_loaded else loaded


def _unload_s(inputs: OracleInputs, model: str) -> float:
    return float(inputs.unload_s.get(model, inputs.default_unload_s))


def cheapest_schedule(inputs: OracleInputs) -> OracleSchedule:
    """Search every unload subset and restart before each model (five models: small)."""
    missing = [m for m in inputs.order if m not in inputs.footprint_bytes]
    if missing:
        return OracleSchedule(False, 0.0, (), f"no measured footprint for {', '.join(missing)}")
    # state: models loaded, least recently used first -> (cost, actions)
    states: Dict[Tuple[str, ...], Tuple[float, Tuple[str, ...]]] = {(): (0.0, ())}
    for model in inputs.order:
        following: Dict[Tuple[str, ...], Tuple[float, Tuple[str, ...]]] = {}
        for loaded, (cost, actions) in states.items():
            options: List[Tuple[Tuple[str, ...], float, Tuple[str, ...]]] = [
                ((), cost + inputs.restart_s, actions + (f"restart before {model}",))]
            for count in range(len(loaded) + 1):
                for dropped in combinations(loaded, count):
                    kept = tuple(m for m in loaded if m not in dropped)
                    extra = sum(_unload_s(inputs, m) for m in dropped)
                    words = tuple(f"unload {m} before {model}" for m in dropped)
                    options.append((kept, cost + extra, actions + words))
            for kept, new_cost, new_actions in options:
                kept = _server_eviction(kept, inputs.max_loaded)
                if not _fits(inputs, kept, model):
                    continue
                state = kept + (model,)
                if state not in following or new_cost < following[state][0]:
                    following[state] = (new_cost, new_actions)
        if not following:
            return OracleSchedule(False, 0.0, (), f"{model} does not fit the limit even alone")
        states = following
    cost, actions = min(states.values(), key=lambda item: item[0])
    return OracleSchedule(True, cost, actions)


def median_or(values: Sequence[float], default: float) -> float:
    """Return the median of values, or default when there are none."""
    return statistics.median(values) if values else default


def oracle_from_runs(*, order: Sequence[str], footprints: Mapping[str, int], limit_bytes: int,
                     server_bytes: int, unloads: Mapping[str, Sequence[float]],
                     restarts_s: Sequence[float],
                     max_loaded: int = 3) -> Tuple[OracleSchedule, OracleInputs]:
    """Build the oracle's inputs from every configuration's measurements and solve it."""
    per_model = {m: statistics.median(v) for m, v in unloads.items() if v}
    every = [s for v in unloads.values() for s in v]
    inputs = OracleInputs(
        order=tuple(order), footprint_bytes=dict(footprints), limit_bytes=limit_bytes,
        server_bytes=server_bytes, unload_s=per_model,
        default_unload_s=median_or(every, 0.2), restart_s=median_or(restarts_s, 1.0),
        max_loaded=max_loaded)
    return cheapest_schedule(inputs), inputs


def describe(schedule: OracleSchedule, inputs: Optional[OracleInputs] = None) -> str:
    """Return the schedule in words."""
    if not schedule.feasible:
        return f"no feasible schedule: {schedule.note}"
    steps = "; ".join(schedule.actions) or "nothing to do"
    costs = ""
    if inputs is not None:
        costs = (f" (restart {inputs.restart_s:.2f} s, unload median "
                 f"{inputs.default_unload_s:.2f} s)")
    return f"{schedule.management_s:.2f} s: {steps}{costs}"
