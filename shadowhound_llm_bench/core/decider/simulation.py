"""
The dry run: the decider's steps over predicted footprints only, through the same make_room loop.

What a plan reports: each model's steps before its load, the predicted peak, unloads, restarts
and skips. A model of a batch is admitted holding room for its batch-mates, as the runner does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

from .action_costs import SEED_COSTS, ActionCosts
from .decision import Action, Decision, LoadedModel, Preparation
from ..memory.footprint import FootprintPrediction
from ..memory.memory_reading import MemoryReading
from .policy_settings import PolicySettings
from .room_making import make_room


class SimulatedPolicy(Protocol):
    """The one memory policy as the dry run asks it (core/decider/policy.py MemoryPolicy)."""

    settings: PolicySettings

    def before_model(self, model: str, prediction: FootprintPrediction, reading: MemoryReading,
                     loaded: Sequence[LoadedModel], done: Preparation) -> Decision:
        """Decide the next step before loading model."""

    def after_model(self, model: str, reading: MemoryReading) -> Decision:
        """Decide whether the model is unloaded after its tests."""


@dataclass
class _SimState:
    working_set_bytes: int
    loaded: List[LoadedModel] = field(default_factory=list)
    costs: ActionCosts = SEED_COSTS


def simulate(policy: SimulatedPolicy, ordered: Sequence[str],
             predictions: Dict[str, FootprintPrediction], reading: MemoryReading,
             loaded: Sequence[LoadedModel], empty_working_set_bytes: int,
             batches: Optional[Sequence[Sequence[str]]] = None,
             costs: ActionCosts = SEED_COSTS) -> List[PlannedStep]:
    """
    Run the policy's decisions over predicted footprints only: what a dry run reports.

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
        _sim_group(policy, group, predictions, reading, state, empty_working_set_bytes, steps)
    return [steps[m] for m in ordered if m in steps]


def _sim_group(policy: SimulatedPolicy, group: Sequence[str],
               predictions: Dict[str, FootprintPrediction], reading: MemoryReading,
               state: _SimState, empty_working_set_bytes: int,
               steps: Dict[str, PlannedStep]) -> None:
    """Simulate one batch (or one model) on the shared state; fills steps."""
    candidates = list(group)
    admitted: List[Tuple[str, List[str], int, int]] = []
    alone: List[str] = []
    for model in group:
        mates = tuple(m for m in candidates if m != model)
        actions, unloads, restarts, skip_reason = _sim_prepare(
            policy, model, predictions, reading, state, empty_working_set_bytes, mates)
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
        after = policy.after_model(model, with_working_set(reading, state.working_set_bytes))
        if after.action is Action.UNLOAD:
            unloads += 1
            _sim_unload(state, (model,))
        steps[model] = PlannedStep(model, predictions[model], actions, peak, unloads,
                                   restarts, "")
    for model in alone:
        _sim_group(policy, [model], predictions, reading, state, empty_working_set_bytes, steps)


def _sim_prepare(policy: SimulatedPolicy, model: str,
                 predictions: Dict[str, FootprintPrediction], reading: MemoryReading,
                 state: _SimState, empty_working_set_bytes: int,
                 mates: Tuple[str, ...]) -> Tuple[List[str], int, int, str]:
    """Simulate before_model for one model: (actions, unloads, restarts, skip reason)."""
    room = _SimRoom(policy, reading, state, predictions, mates)
    done = Preparation(empty_working_set_bytes=empty_working_set_bytes, costs=state.costs)
    decision, steps = make_room(policy, model, predictions[model], room, done)
    skip_reason = decision.reason if decision.action is Action.SKIP else ""
    return steps, room.unloads, room.restarts, skip_reason


class _SimRoom:
    """make_room's steps on predicted numbers: unloads and restarts change the simulated state."""

    def __init__(self, policy: SimulatedPolicy, reading: MemoryReading, state: _SimState,
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
        return with_working_set(self.reading, self.state.working_set_bytes), self.state.loaded

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


def with_working_set(reading: MemoryReading, working_set_bytes: int) -> MemoryReading:
    """Copy a reading with other memory in use (budget unchanged)."""
    model_memory = None if reading.model_memory_bytes is None else working_set_bytes
    return replace(reading, container=replace(reading.container,
                                              working_set_bytes=working_set_bytes),
                   model_memory_bytes=model_memory)
