"""
Ground truth behind the seed table: the server's own counters and an oracle schedule.

ServerTruth polls the simulator's /sim/state (the server's truth, which the product never
reads) and sums its refusals and failed loads over every server instance a run saw (a restart
starts a new server with new counters). The oracle is computed offline from the simulator's
true footprints of the run's models (sim/ollama_estimate.py, what the simulated runner really
holds, never the product's predictions): the fewest management actions that keep every model
within the model budget, priced with the action times measured in the same run.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import httpx

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory


class ServerTruth:
    """Refusals and failed loads as the simulator counted them, over every server instance."""

    def __init__(self, base_url: str, period_s: float = 0.5) -> None:
        self.base_url = base_url
        self.period_s = period_s
        self._by_pid: Dict[int, Tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="server-truth", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            state = httpx.get(self.base_url + "/sim/state", timeout=2.0).json()["scheduler"]
        except (httpx.HTTPError, ValueError, KeyError):
            return  # the server is restarting: its counters are read again once it answers
        self._by_pid[int(state["pid"])] = (int(state.get("refusals", 0)),
                                           int(state.get("failed_loads", 0)))

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._poll()

    def stop(self) -> Dict[str, int]:
        """End polling (one last read); refusals and runner deaths (EOF) over all servers."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._poll()
        refusals = sum(r for r, _ in self._by_pid.values())
        failed = sum(f for _, f in self._by_pid.values())
        return {"server_refusals": refusals, "server_runner_deaths": failed}


def true_footprints(scenario: Any, models: Sequence[str], num_ctx: int) -> Dict[str, int]:
    """Return what each model's runner really holds on the simulated machine (its bytes)."""
    catalog = builtin_catalog()
    unified = scenario.memory_model == "unified"
    result = {}
    for model in models:
        estimate = estimate_model_memory(
            catalog[model], num_ctx=num_ctx, num_parallel=scenario.num_parallel,
            kv_cache_type=scenario.kv_cache_type, on_gpu=unified)
        held = scenario.physical_bytes(estimate.total_bytes)
        if unified:  # device memory plus the runner's CPU-side share
            held += scenario.physical_bytes(scenario.runner_cpu_bytes)
        result[model] = held
    return result


@dataclass(frozen=True)
class ActionTimes:
    """Median seconds of one action on this machine, measured in the same run."""

    unload_s: float
    restart_s: float
    drop_s: float

    @staticmethod
    def median_of(unloads: Sequence[float], restarts: Sequence[float],
                  drops: Sequence[float]) -> "ActionTimes":
        """Medians (0 for an action never measured)."""
        def med(values: Sequence[float]) -> float:
            return statistics.median(values) if values else 0.0
        return ActionTimes(med(unloads), med(restarts), med(drops))


@dataclass
class OracleSchedule:
    """The oracle's actions (in words) and their total time."""

    actions: List[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: List[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the actions and their time."""
        done = "; ".join(self.actions) or "nothing"
        skip = f"; skip {', '.join(self.skipped)} (never fits)" if self.skipped else ""
        return f"{self.seconds:.2f} s: {done}{skip}"


def oracle_schedule(models: Sequence[str], footprints: Dict[str, int], budget_bytes: int,
                    times: ActionTimes, *, unified: bool) -> OracleSchedule:
    """
    Plan the least management time that keeps the cached models within budget_bytes.

    Before each model, when it does not fit beside the cached ones: either unload the fewest
    (largest first; one batch, waited for once) - on unified memory followed by a drop of the
    driver's pool, which keeps unloaded pages until then - or restart (everything goes),
    whichever costs less. After the last model every run unloads what is left (one batch).
    """
    plan = OracleSchedule()
    cached: List[str] = []
    unload_cost = times.unload_s + (times.drop_s if unified else 0.0)
    for model in models:
        need = footprints[model]
        if need > budget_bytes:
            plan.skipped.append(model)
            continue
        used = sum(footprints[m] for m in cached)
        if used + need > budget_bytes:
            victims: List[str] = []
            for other in sorted(cached, key=lambda m: -footprints[m]):
                if used + need <= budget_bytes:
                    break
                victims.append(other)
                used -= footprints[other]
            if times.restart_s and times.restart_s < unload_cost:
                plan.actions.append(f"restart before {model}")
                plan.seconds += times.restart_s
                cached = []
            else:
                plan.actions.append(f"unload {', '.join(victims)} before {model}"
                                    + (" + drop" if unified else ""))
                plan.seconds += unload_cost
                cached = [m for m in cached if m not in victims]
        cached.append(model)
    if cached:
        plan.actions.append(f"unload {', '.join(cached)} at the end")
        plan.seconds += times.unload_s
    return plan
