"""
The one memory policy: pure load / unload / restart / wait / skip decisions from readings.

Every decision the memory guard carries out is asked here: before a model (through
room_making.make_room), after it, on failures (failures.py), on models found loaded and around
a calibration (found_loaded.py), on every sample (preemption.py, memory_back.py); the dry run
(simulation.py) asks the same methods over predicted numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .action_costs import SEED_COSTS, ActionCosts
from .decision import Action, Decision, LoadedModel, Preparation
from ..memory.footprint import SOURCE_MEASURED, FootprintPrediction
from ..memory.memory_reading import ContainerState, MemoryReading
from . import failures, found_loaded, memfree_rule, memory_back, simulation
from .failures import UNANSWERED_REQUESTS_LIMIT
from .preemption import find_breach
from .room_making import RoomMaker, make_room
from .policy_settings import KeepAlive, PolicySettings
from .simulation import PlannedStep
from ..units import to_gib

__all__ = ["Cleanup", "MemoryPolicy", "PlannedStep", "UNANSWERED_REQUESTS_LIMIT"]


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.2f} GiB"


@dataclass(frozen=True)
class Cleanup:
    """Verdict on an unload: did the model leave and its memory come back."""

    successful: bool
    released_bytes: int
    decision: Decision


class MemoryPolicy:
    """Decides from readings and predictions only; the memory guard carries the decisions out."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------ order and plan
    def order(self, models: Sequence[str],
              predictions: Dict[str, FootprintPrediction]) -> List[str]:
        """Models in run order: small to large unless the settings say otherwise."""
        unique = list(dict.fromkeys(models))
        if self.settings.order == "given":
            return unique

        def size(model: str) -> int:
            prediction = predictions.get(model)
            # Unknown sizes go last: if they break something, the known results are in already.
            return prediction.footprint_bytes if prediction and prediction.known else 1 << 62

        return sorted(unique, key=size, reverse=self.settings.order == "large_to_small")

    def batches(self, ordered: Sequence[str], predictions: Dict[str, FootprintPrediction],
                reading: MemoryReading, empty_working_set_bytes: int) -> List[List[str]]:
        """
        Group models to test side by side; all singletons unless parallel testing is on.

        A batch holds consecutive models whose predicted footprints all fit in the budget at once
        (N x size + base < budget, the seed's rule), at most parallel_max_models of them, none
        larger than parallel_max_model_bytes (when set), and never a model of unknown size.
        """
        s = self.settings
        if not s.parallel_small_models:
            return [[m] for m in ordered]
        room = reading.model_budget_bytes - empty_working_set_bytes
        result: List[List[str]] = []
        current: List[str] = []
        used = 0
        for model in ordered:
            prediction = predictions[model]
            size = prediction.footprint_bytes
            small = prediction.known and (s.parallel_max_model_bytes is None
                                          or size <= s.parallel_max_model_bytes)
            joins = (current and small and used + size <= room
                     and len(current) < s.parallel_max_models)
            if joins:
                current.append(model)
                used += size
                continue
            if current:
                result.append(current)
            current, used = [model], size if small else room + 1
        if current:
            result.append(current)
        return result

    # ------------------------------------------------------------------ before a model
    def make_room(self, model: str, prediction: FootprintPrediction, maker: RoomMaker,
                  done: Preparation) -> Tuple[Decision, List[str]]:
        """Decide step by step until LOAD or SKIP; maker observes and carries out each step."""
        return make_room(self, model, prediction, maker, done)

    def before_model(self, model: str, prediction: FootprintPrediction, reading: MemoryReading,
                     loaded: Sequence[LoadedModel], done: Preparation) -> Decision:
        """Next step to make room for a model: load, unload others, restart, wait or skip."""
        s = self.settings
        budget = reading.model_budget_bytes
        ws = reading.memory_in_use_bytes
        need = prediction.footprint_bytes
        mates = done.reserved_for
        others = [m for m in loaded if m.model != model and m.model not in mates]
        reserved = max(0, done.reserved_bytes)
        numbers = (f"predicted {_gib(need)} ({prediction.source}), working set {_gib(ws)}, "
                   f"budget {_gib(budget)}, ROS reserve {_gib(reading.ros_reserve_bytes)}")
        if reserved:
            numbers += f", held for {', '.join(mates)} (side by side) {_gib(reserved)}"

        room_when_empty = budget - done.empty_working_set_bytes
        if s.skip_models_that_never_fit and prediction.known and need > room_when_empty:
            return Decision(Action.SKIP,
                            f"{model} cannot fit even in an empty container: needs {_gib(need)}, "
                            f"budget leaves {_gib(room_when_empty)} for models; {numbers}")
        if reserved and prediction.known and need + reserved > room_when_empty:
            return Decision(Action.SKIP,
                            f"{model} cannot run beside {', '.join(mates)}: together they need "
                            f"{_gib(need + reserved)}, the budget leaves {_gib(room_when_empty)} "
                            f"for models; test it on its own; {numbers}")

        threshold = s.restart_before_models_over_bytes
        if threshold is not None and not done.restarted and (threshold == 0 or need > threshold):
            why = ("the preset restarts before every model" if threshold == 0 else
                   f"predicted {_gib(need)} is over the restart threshold {_gib(threshold)}")
            return Decision(Action.RESTART, f"restart before {model}: {why}; {numbers}")

        if not prediction.known:
            if others and s.make_room_when_needed and not done.unloaded_others:
                return Decision(Action.UNLOAD_OTHERS,
                                f"size of {model} unknown: unload every other model first; "
                                f"{numbers}", tuple(m.model for m in others))
            return Decision(Action.LOAD, f"load {model} (size unknown); {numbers}",
                            keep_alive=self.keep_alive(reading))

        headroom = budget - ws - reserved
        # A prediction not measured on this machine may be a few percent short (Ollama's graph,
        # the runner's own memory): it has to fit with a margin.
        margin = 0 if prediction.source == SOURCE_MEASURED else \
            int(need * s.prediction_margin_fraction)
        if margin:
            numbers += f", margin for the prediction {_gib(margin)}"
        already = any(m.model == model for m in loaded)
        if already or need + margin <= headroom:
            free = None if already else memfree_rule.before_load(
                s, model, need + margin, reading, done)
            if free is not None:
                return free
            return Decision(Action.LOAD,
                            f"load {model}: fits, {_gib(headroom)} free in the budget; {numbers}",
                            keep_alive=self.keep_alive(reading))
        deficit = need + margin - headroom
        if not s.make_room_when_needed:
            return Decision(Action.LOAD,
                            f"load {model} although it is predicted not to fit ({_gib(deficit)} "
                            f"short): preset {s.preset} makes no room; {numbers}",
                            keep_alive=self.keep_alive(reading))
        if others and not done.unloaded_others:
            victims = self._models_to_free(others, deficit)
            if s.cost_aware_room and not done.restarted and \
                    not any(m.model in mates for m in loaded):
                cheaper = self._restart_instead(model, others, victims, deficit, done.costs)
                if cheaper:
                    return Decision(Action.RESTART, f"{cheaper}; {numbers}")
            return Decision(Action.UNLOAD_OTHERS,
                            f"{model} does not fit ({_gib(deficit)} short): unload "
                            f"{', '.join(victims)}; {numbers}", victims)
        if not done.restarted:
            what = ("after unloading the others" if done.unloaded_others
                    else "with nothing to unload")
            return Decision(Action.RESTART,
                            f"{model} still does not fit {what} ({_gib(deficit)} short): "
                            f"restart the container; {numbers}")
        if done.waited_s < s.memory_wait_s:
            return Decision(Action.WAIT,
                            f"{model} does not fit after a restart ({_gib(deficit)} short): wait "
                            f"up to {s.memory_wait_s - done.waited_s:.1f} s for memory; {numbers}")
        return Decision(Action.SKIP,
                        f"skip {model}: needs {_gib(need)} but only {_gib(headroom)} of the "
                        f"budget is free after unloading, restarting and waiting "
                        f"{done.waited_s:.1f} s; {numbers}")

    def _restart_instead(self, model: str, others: Sequence[LoadedModel],
                         victims: Sequence[str], deficit: int, costs: ActionCosts) -> str:
        """
        Return why a restart beats unloading the victims (cost-aware room making), or "".

        A restart wins when it costs less than the unloads needed, or when the unloads would
        free most of what is cached anyway and the restart costs at most the tolerance times
        the unloads (it also returns memory an unload may leak and leaves a clean state).
        """
        s = self.settings
        unload_s = costs.unload_s  # sent at once, waited for once
        cached = sum(m.footprint_bytes for m in others)
        freed = sum(m.footprint_bytes for m in others if m.model in victims)
        share = freed / cached if cached > 0 else 0.0
        numbers = (f"unloading {', '.join(victims)} would take {unload_s:.2f} s and free "
                   f"{_gib(freed)} of {_gib(cached)} cached ({share * 100:.0f} %), a restart "
                   f"{costs.restart_s:.2f} s ({costs.describe()})")
        head = f"{model} does not fit ({_gib(deficit)} short): restart instead of unloading"
        if costs.restart_s < unload_s:
            return f"{head}, the restart is cheaper: {numbers}"
        if share >= s.restart_when_freeing_share and \
                costs.restart_s <= s.restart_cost_tolerance * unload_s:
            return (f"{head}, the unloads would free most of what is cached "
                    f"(>= {s.restart_when_freeing_share * 100:.0f} %) and the restart costs at "
                    f"most {s.restart_cost_tolerance:g}x the unloads: {numbers}")
        return ""

    @staticmethod
    def _models_to_free(others: Sequence[LoadedModel], deficit: int) -> Tuple[str, ...]:
        """Fewest models that free the deficit: largest first; all if that is not enough."""
        chosen: List[str] = []
        freed = 0
        for m in sorted(others, key=lambda m: m.footprint_bytes, reverse=True):
            chosen.append(m.model)
            freed += m.footprint_bytes
            if freed >= deficit:
                break
        return tuple(chosen)

    def keep_alive(self, reading: MemoryReading) -> KeepAlive:
        """keep_alive for the model's requests; dynamic: longer when more memory is free."""
        s = self.settings
        if not s.dynamic_keep_alive:
            return s.keep_alive
        budget = max(1, reading.model_budget_bytes)
        free_share = max(0.0, min(1.0, reading.budget_headroom_bytes / budget))
        seconds = int(round(s.dynamic_keep_alive_max_s * free_share))
        return max(s.dynamic_keep_alive_min_s, seconds)

    # ------------------------------------------------------------------ while a model runs
    def check_pressure(self, model: str, reading: MemoryReading) -> Decision:
        """KEEP, ALERT (over the alert percent) or ABORT (over the abort percent: robot wins)."""
        s = self.settings
        pressure = reading.pressure_percent
        numbers = (f"{reading.source} {_gib(reading.memory_in_use_bytes)} is {pressure:.0f} % "
                   f"of the budget {_gib(reading.model_budget_bytes)} (ROS live "
                   f"{_gib(reading.ros_live_bytes)}, reserve {_gib(reading.ros_reserve_bytes)})")
        if pressure >= s.pressure_abort_percent:
            return Decision(Action.ABORT, f"stop {model}: {numbers}, over the abort limit "
                            f"{s.pressure_abort_percent:.0f} %")
        if pressure >= s.pressure_alert_percent:
            return Decision(Action.ALERT, f"memory pressure high during {model}: {numbers}, "
                            f"over the alert limit {s.pressure_alert_percent:.0f} %")
        return Decision(Action.KEEP, f"{model}: {numbers}")

    # ------------------------------------------------------------------ after a model
    def after_model(self, model: str, reading: MemoryReading) -> Decision:
        """UNLOAD (preset says so, or pressure is high) or KEEP the model cached."""
        s = self.settings
        pressure = reading.pressure_percent
        numbers = (f"{reading.source} {_gib(reading.memory_in_use_bytes)}, "
                   f"{pressure:.0f} % of the budget {_gib(reading.model_budget_bytes)}")
        if s.unload_after_each_model:
            return Decision(Action.UNLOAD, f"unload {model}: preset {s.preset} unloads after "
                            f"each model; {numbers}", (model,))
        if s.make_room_when_needed and pressure >= s.pressure_alert_percent:
            return Decision(Action.UNLOAD, f"unload {model}: pressure over the alert limit "
                            f"{s.pressure_alert_percent:.0f} %; {numbers}", (model,))
        return Decision(Action.KEEP, f"keep {model} cached: preset {s.preset}; {numbers}")

    def cleanup(self, model: str, *, still_listed: bool, before_unload_bytes: int,
                after_unload_bytes: int, footprint_bytes: int, reclaim_stalled: bool = False,
                can_drop_caches: bool = False, dropped_caches: bool = False) -> Cleanup:
        """
        Judge an unload by /api/ps and by how much memory came back (chosen sources).

        When the memory stayed up, or the model's memory left but the host did not get it back
        (reclaim stalled: a driver pool or page cache holds it), the page cache is dropped
        first if allowed; then the preset's restart rule applies.
        """
        s = self.settings
        released = before_unload_bytes - after_unload_bytes
        expected = int(s.cleanup_min_release_fraction * max(0, footprint_bytes))
        numbers = (f"memory in use {_gib(before_unload_bytes)} -> {_gib(after_unload_bytes)} "
                   f"(released {_gib(released)}, expected at least {_gib(expected)})")
        if not still_listed and (released < expected or reclaim_stalled) and \
                s.drop_caches == "auto" and can_drop_caches and not dropped_caches:
            what = ("stayed up" if released < expected else
                    "left the model but the host did not get it back")
            return Cleanup(False, released, Decision(
                Action.DROP_CACHES, f"the memory of {model} {what}: drop the page cache and "
                f"judge again; {numbers}"))
        if still_listed:
            problem = f"{model} is still listed in /api/ps"
        elif released < expected:
            problem = f"the memory of {model} stayed up"
        else:
            return Cleanup(True, released,
                           Decision(Action.KEEP, f"cleanup of {model} successful: {numbers}"))
        if s.restart_when_cleanup_fails:
            return Cleanup(False, released,
                           Decision(Action.RESTART, f"{problem}: restart; {numbers}"))
        return Cleanup(False, released, Decision(
            Action.KEEP, f"{problem}; preset {s.preset} does not restart; {numbers}"))

    # ------------------------------------------------------------------ models found loaded
    def at_run_start(self, found: Sequence[str], *, run_models: Sequence[str] = (),
                     keep_others: bool = False) -> Decision:
        """Models loaded before the run's first decision (core/decider/found_loaded.py)."""
        return found_loaded.at_run_start(found, run_models=run_models, keep_others=keep_others)

    def at_run_end(self, loaded_by_run: Sequence[str]) -> Decision:
        """After the last model (also after cancel or failure): unload what the run loaded."""
        return found_loaded.at_run_end(loaded_by_run)

    def before_calibration(self, model: str, loaded: Sequence[str], *,
                           kept: Sequence[str] = ()) -> Decision:
        """Before a calibration loads model: UNLOAD_OTHERS (never the kept ones) or KEEP."""
        return found_loaded.before_calibration(model, loaded, kept=kept)

    def after_calibration_load(self, model: str, *, why: str = "calibration") -> Decision:
        """After the sources were read with model loaded for a calibration: UNLOAD it."""
        return found_loaded.after_calibration_load(model, why=why)

    # ------------------------------------------------------------------ failures
    def on_load_failure(self, model: str, error: str, attempt: int, *,
                        can_drop_caches: bool = False) -> Decision:
        """After a failed load: DROP_CACHES, RETRY or SKIP (core/decider/failures.py)."""
        return failures.on_load_failure(self.settings, model, error, attempt,
                                        can_drop_caches=can_drop_caches)

    def on_unanswered_requests(self, model: str, *, unanswered_in_a_row: int,
                               no_server_in_a_row: int, side_by_side: bool) -> Decision:
        """Decide on requests in a row without an answer: KEEP, RESTART, SKIP (failures.py)."""
        return failures.on_unanswered_requests(
            model, unanswered_in_a_row=unanswered_in_a_row,
            no_server_in_a_row=no_server_in_a_row, side_by_side=side_by_side)

    def after_model_not_loaded(self, model: str, *, failed_load: bool) -> Decision:
        """After a model Ollama does not hold: RESTART for a clean state after a failed load."""
        return failures.after_model_not_loaded(self.settings, model, failed_load=failed_load)

    def on_server_lost(self, model: str, error: str, attempt: int,
                       container_state: ContainerState) -> Decision:
        """Ollama stopped answering mid-run: RESTART and retry once, or SKIP (failures.py)."""
        return failures.on_server_lost(self.settings, model, error, attempt, container_state)

    # ------------------------------------------------------------------ preemption
    def on_sample(self, reading: MemoryReading, *, held_bytes: int,
                  in_flight: Sequence[str]) -> Decision:
        """
        On every memory sample: PREEMPT when the robot needs memory the models hold, else KEEP.

        held_bytes is what the container holds beyond its empty working set; in_flight names
        the models with a load or stream under way.
        """
        s = self.settings
        breach = find_breach(reading, error_percent=s.pressure_abort_percent)
        if breach is None:
            return Decision(Action.KEEP, "no breach")
        if not s.preempt_on_breach:
            return Decision(Action.ALERT, f"{breach.describe()}; preemption is turned off")
        if not in_flight and held_bytes <= s.preempt_rise_fraction * reading.model_budget_bytes:
            return Decision(Action.ALERT, f"{breach.describe()}; no model holds memory to free")
        what = ", ".join(in_flight) if in_flight else "the cached models"
        return Decision(Action.PREEMPT, f"preempt {what}: {breach.describe()}; models hold "
                        f"{_gib(held_bytes)}", tuple(in_flight))

    def preemption_unloads(self, preempted: Decision, listed: Sequence[str]) -> Decision:
        """
        After a PREEMPT cut the requests: UNLOAD the preempted models and every one listed.

        The robot needs the memory now: whatever /api/ps lists is unloaded with them.
        """
        models = list(preempted.models_to_unload)
        models += [m for m in listed if m and m not in models]
        what = ", ".join(models) or "nothing listed"
        return Decision(Action.UNLOAD, f"preempted: unload {what}; {preempted.reason}",
                        models_to_unload=tuple(models))

    def while_preempting(self, **numbers: object) -> Decision:
        """After the unload was sent: DROP_CACHES, RESTART or WAIT (decider/memory_back.py)."""
        return memory_back.while_preempting(self.settings, **numbers)

    def after_preemption(self, reading: MemoryReading, waited_s: float,
                         **drops: bool) -> Decision:
        """After a preemption: LOAD, DROP_CACHES, WAIT or END_RUN (core/decider/memory_back.py)."""
        return memory_back.after_preemption(self.settings, reading, waited_s, **drops)

    # ------------------------------------------------------------------ dry run
    def simulate(self, ordered: Sequence[str], predictions: Dict[str, FootprintPrediction],
                 reading: MemoryReading, loaded: Sequence[LoadedModel],
                 empty_working_set_bytes: int,
                 batches: Optional[Sequence[Sequence[str]]] = None,
                 costs: ActionCosts = SEED_COSTS) -> List[PlannedStep]:
        """Run these decisions over predicted footprints only (core/decider/simulation.py)."""
        return simulation.simulate(self, ordered, predictions, reading, loaded,
                                   empty_working_set_bytes, batches=batches, costs=costs)
