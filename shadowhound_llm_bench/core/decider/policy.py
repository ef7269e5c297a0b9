"""The one memory policy: pure load / unload / restart / wait / skip decisions from readings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from .action_costs import SEED_COSTS, ActionCosts
from .cache_drop import is_memory_refusal
from .decision import Action, Decision, LoadedModel, Preparation
from ..memory.footprint import SOURCE_MEASURED, FootprintPrediction
from ..memory.memory_reading import ContainerState, MemoryReading
from . import memfree_rule, memory_back
from .preemption import find_breach
from .room_making import make_room
from ..ollama.model_metadata import same_model
from .policy_settings import KeepAlive, PolicySettings
from ..units import to_gib


# Requests in a row without an answer (no server, model gone) that end a model's tests.
UNANSWERED_REQUESTS_LIMIT = 2


def _gib(n_bytes: int) -> str:
    return f"{to_gib(n_bytes):.2f} GiB"


@dataclass(frozen=True)
class Cleanup:
    """Verdict on an unload: did the model leave and its memory come back."""

    successful: bool
    released_bytes: int
    decision: Decision


@dataclass
class _SimState:
    working_set_bytes: int
    loaded: List[LoadedModel] = field(default_factory=list)
    costs: ActionCosts = SEED_COSTS


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

    # ------------------------------------------------------------------ run bookends
    def at_run_start(self, found_loaded: Sequence[str], *, run_models: Sequence[str] = (),
                     keep_others: bool = False) -> Decision:
        """
        Models loaded before the run's first decision (a killed run, another client).

        Those the run will test are always unloaded: loaded already, they would be "measured"
        at no footprint. The others are unloaded too, so the run starts from an empty
        container, unless keep_others: then their memory is counted as part of the container's
        baseline and left to their client.
        """
        if not found_loaded:
            return Decision(Action.KEEP, "no model loaded before the run")
        tested = [m for m in found_loaded if any(same_model(m, r) for r in run_models)]
        others = [m for m in found_loaded if m not in tested]
        unload = tested + ([] if keep_others else others)
        found = (f"{', '.join(found_loaded)} already loaded before the run (left by an earlier "
                 "run or another client)")
        if not unload:
            return Decision(Action.KEEP, f"{found}: kept and counted in the container's "
                            "baseline (their memory is not free for this run)")
        why = "so every footprint is measured from a baseline without them"
        if keep_others and others:
            why += f"; {', '.join(others)} kept and counted in the baseline"
        return Decision(Action.UNLOAD_OTHERS, f"{found}: unload {', '.join(unload)} {why}",
                        models_to_unload=tuple(unload))

    def at_run_end(self, loaded_by_run: Sequence[str]) -> Decision:
        """After the last model (also after cancel or failure): unload what the run loaded."""
        if not loaded_by_run:
            return Decision(Action.KEEP, "the run left no model loaded")
        return Decision(Action.UNLOAD, f"run ended with {', '.join(loaded_by_run)} loaded: "
                        f"unload (every preset leaves Ollama as the run found it)",
                        models_to_unload=tuple(loaded_by_run))

    # ------------------------------------------------------------------ failures
    def on_load_failure(self, model: str, error: str, attempt: int, *,
                        can_drop_caches: bool = False) -> Decision:
        """
        After a failed load (attempt from 1): RETRY (after a restart) or SKIP with the error.

        Ollama's "requires more system memory" refusal is answered by a page-cache drop first
        (DROP_CACHES, then retry without a restart) when that is allowed.
        """
        s = self.settings
        if attempt <= s.load_retries and is_memory_refusal(error) and \
                s.drop_caches == "auto" and can_drop_caches:
            return Decision(Action.DROP_CACHES, f"load of {model} refused (attempt {attempt}): "
                            f"{error}; page cache counted as used: drop it and retry")
        if attempt <= s.load_retries:
            if s.restart_on_load_failure:
                return Decision(Action.RETRY, f"load of {model} failed (attempt {attempt}): "
                                f"{error}; restart the container and retry",
                                restart_first=True)
            return Decision(Action.RETRY, f"load of {model} failed (attempt {attempt}): {error}; "
                            "retry without a restart")
        return Decision(Action.SKIP, f"skip {model}: load failed {attempt} time(s), "
                        f"last error: {error}")

    def on_unanswered_requests(self, model: str, *, unanswered_in_a_row: int,
                               no_server_in_a_row: int, side_by_side: bool) -> Decision:
        """
        Decide on requests in a row without an answer (no server, model gone): KEEP, RESTART, SKIP.

        Two in a row end the model. When no server answered at all, RESTART asks for a recovery
        (on_server_lost decides whether it is possible); side by side, a restart would also
        break the batch-mates' tests, and a missing model is not brought back by a restart.
        """
        if unanswered_in_a_row < UNANSWERED_REQUESTS_LIMIT:
            return Decision(Action.KEEP, f"{model}: {unanswered_in_a_row} request(s) in a row "
                            "unanswered; go on")
        lost = (f"{model}: {unanswered_in_a_row} requests in a row unanswered "
                f"({no_server_in_a_row} found no server)")
        if side_by_side:
            return Decision(Action.SKIP, f"{lost}; tested side by side, a restart would break "
                            "the others' tests: give it up")
        if no_server_in_a_row < unanswered_in_a_row:
            return Decision(Action.SKIP, f"{lost}; the model went missing: give it up")
        return Decision(Action.RESTART, f"{lost}: recover the server (if the preset and the "
                        "container allow it), then retry")

    def after_model_not_loaded(self, model: str, *, failed_load: bool) -> Decision:
        """After a model Ollama does not hold: RESTART for a clean state after a failed load."""
        if failed_load and self.settings.restart_on_load_failure:
            return Decision(Action.RESTART, f"{model} failed to load: restart for a clean state "
                            "before the next model")
        return Decision(Action.KEEP, f"{model} is not loaded: nothing to unload")

    def on_server_lost(self, model: str, error: str, attempt: int,
                       container_state: ContainerState) -> Decision:
        """
        Ollama stopped answering mid-run (attempt from 1): RESTART, then retry the model once.

        SKIP means give up: the preset does not restart, the container is gone (removed), or a
        restart already did not bring the server back.
        """
        s = self.settings
        where = f"container {container_state.name.lower()}"
        lost = f"Ollama stopped answering during {model} ({error}; {where})"
        if not s.restart_when_unreachable:
            return Decision(Action.SKIP, f"{lost}: preset {s.preset} does not restart")
        if container_state is ContainerState.MISSING:
            return Decision(Action.SKIP, f"{lost}: the container is gone (removed), nothing to "
                            "restart")
        if attempt > 1:
            return Decision(Action.SKIP, f"{lost} again after a restart: give {model} up")
        return Decision(Action.RESTART, f"{lost}: restart the container and retry {model} once")

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
                 costs: ActionCosts = SEED_COSTS) -> List["PlannedStep"]:
        """
        Run the decisions above over predicted footprints only: what a dry run reports.

        With batches, the models of a batch are admitted one after another (each holding room
        for its batch-mates), loaded together and then finished one by one, as the runner does;
        a model that cannot run beside its batch-mates is planned on its own after the batch.
        """
        state = _SimState(reading.memory_in_use_bytes, list(loaded), costs)
        steps: Dict[str, PlannedStep] = {}
        groups = [list(b) for b in batches or () if b]
        grouped = {m for b in groups for m in b}
        groups += [[m] for m in ordered if m not in grouped]
        for group in groups:
            self._sim_group(group, predictions, reading, state, empty_working_set_bytes, steps)
        return [steps[m] for m in ordered if m in steps]

    def _sim_group(self, group: Sequence[str], predictions: Dict[str, FootprintPrediction],
                   reading: MemoryReading, state: "_SimState", empty_working_set_bytes: int,
                   steps: Dict[str, "PlannedStep"]) -> None:
        """Simulate one batch (or one model) on the shared state; fills steps."""
        candidates = list(group)
        admitted: List[Tuple[str, List[str], int, int]] = []
        alone: List[str] = []
        for model in group:
            mates = tuple(m for m in candidates if m != model)
            actions, unloads, restarts, skip_reason = self._sim_prepare(
                model, predictions, reading, state, empty_working_set_bytes, mates)
            if skip_reason:
                candidates.remove(model)
                if mates:
                    alone.append(model)  # the runner tests it on its own after the batch
                else:
                    steps[model] = PlannedStep(model, predictions[model], actions,
                                               state.working_set_bytes, unloads, restarts,
                                               skip_reason)
                continue
            admitted.append((model, actions, unloads, restarts))
        for model, _, _, _ in admitted:
            if all(m.model != model for m in state.loaded):
                state.loaded.append(LoadedModel(model, predictions[model].footprint_bytes))
                state.working_set_bytes += predictions[model].footprint_bytes
        peak = state.working_set_bytes
        for model, actions, unloads, restarts in admitted:
            after = self.after_model(model, _with_working_set(reading, state.working_set_bytes))
            if after.action is Action.UNLOAD:
                unloads += 1
                _sim_unload(state, (model,))
            steps[model] = PlannedStep(model, predictions[model], actions, peak, unloads,
                                       restarts, "")
        for model in alone:
            self._sim_group([model], predictions, reading, state, empty_working_set_bytes, steps)

    def _sim_prepare(self, model: str, predictions: Dict[str, FootprintPrediction],
                     reading: MemoryReading, state: "_SimState", empty_working_set_bytes: int,
                     mates: Tuple[str, ...]) -> Tuple[List[str], int, int, str]:
        """Simulate before_model for one model: (actions, unloads, restarts, skip reason)."""
        room = _SimRoom(self, reading, state, predictions, mates)
        done = Preparation(empty_working_set_bytes=empty_working_set_bytes, costs=state.costs)
        decision, steps = make_room(self, model, predictions[model], room, done)
        skip_reason = decision.reason if decision.action is Action.SKIP else ""
        return steps, room.unloads, room.restarts, skip_reason


class _SimRoom:
    """make_room's steps on predicted numbers: unloads and restarts change the simulated state."""

    def __init__(self, policy: MemoryPolicy, reading: MemoryReading, state: _SimState,
                 predictions: Dict[str, FootprintPrediction], mates: Tuple[str, ...]) -> None:
        self.policy = policy
        self.reading = reading
        self.state = state
        self.predictions = predictions
        self.mates = mates
        self.unloads = 0
        self.restarts = 0

    def observe(self, done: Preparation) -> Tuple[MemoryReading, List[LoadedModel]]:
        """Return the simulated reading and models; hold room for batch-mates not loaded."""
        listed = {m.model for m in self.state.loaded}
        done.reserved_for = self.mates
        done.reserved_bytes = sum(self.predictions[m].footprint_bytes for m in self.mates
                                  if m not in listed)
        return _with_working_set(self.reading, self.state.working_set_bytes), self.state.loaded

    def carry_out(self, decision: Decision, reading: MemoryReading, done: Preparation) -> float:
        """Unload or restart on the simulated state; a wait sees no memory come back."""
        if decision.action is Action.UNLOAD_OTHERS:
            self.unloads += len(decision.models_to_unload)
            _sim_unload(self.state, decision.models_to_unload)
        elif decision.action is Action.RESTART:
            self.restarts += 1
            self.state.loaded = []
            self.state.working_set_bytes = done.empty_working_set_bytes
        elif decision.action is Action.WAIT:
            # Predicted memory does not come back by waiting: the whole wait passes.
            return max(0.0, self.policy.settings.memory_wait_s - done.waited_s)
        return 0.0


@dataclass(frozen=True)
class PlannedStep:
    """One model of a simulated run."""

    model: str
    prediction: FootprintPrediction
    actions_before: List[str]
    predicted_peak_bytes: int
    unloads: int
    restarts: int
    skip_reason: str


def _sim_unload(state: _SimState, models: Sequence[str]) -> None:
    for m in list(state.loaded):
        if m.model in models:
            state.loaded.remove(m)
            state.working_set_bytes -= m.footprint_bytes


def _with_working_set(reading: MemoryReading, working_set_bytes: int) -> MemoryReading:
    """Copy a reading with other memory in use (budget unchanged)."""
    model_memory = None if reading.model_memory_bytes is None else working_set_bytes
    return replace(reading, container=replace(reading.container,
                                              working_set_bytes=working_set_bytes),
                   model_memory_bytes=model_memory)
