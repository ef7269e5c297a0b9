"""
The one loop that makes room for a model: the real run and the dry run both go through it.

The policy decides each step (core/decider/policy.py before_model); a RoomMaker observes memory and
carries the step out: on the machine (engine/memory_guard.py) or on predicted numbers only
(MemoryPolicy.simulate). What has been done is tracked here, in one place, so a dry-run plan
takes the same steps as the run whenever the predictions hold.
"""

from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Tuple

from .decision import Action, Decision, LoadedModel, Preparation
from ..memory.footprint import FootprintPrediction
from ..memory.memory_reading import MemoryReading

MAX_PREPARATION_STEPS = 64


class Decider(Protocol):
    """The one memory policy as make_room sees it (core/decider/policy.py MemoryPolicy)."""

    def before_model(self, model: str, prediction: FootprintPrediction, reading: MemoryReading,
                     loaded: Sequence[LoadedModel], done: Preparation) -> Decision:
        """Decide the next step before loading model."""


class RoomMaker(Protocol):
    """Where the steps happen: the machine, or a simulation of it."""

    def observe(self, done: Preparation) -> Optional[Tuple[MemoryReading,
                                                           Sequence[LoadedModel]]]:
        """Read memory and the loaded models (and update done's inputs); None: canceled."""

    def carry_out(self, decision: Decision, reading: MemoryReading,
                  done: Preparation) -> float:
        """Unload, restart or wait as decided; return the seconds waited (WAIT only)."""


def make_room(policy: Decider, model: str, prediction: FootprintPrediction,
              maker: RoomMaker, done: Preparation) -> Tuple[Decision, List[str]]:
    """
    Ask the policy step by step until it says LOAD or SKIP; return it and the steps taken.

    Repeated steps in a row (waiting in periods) count once in the list.
    """
    steps: List[str] = []
    for _ in range(MAX_PREPARATION_STEPS):
        observed = maker.observe(done)
        if observed is None:
            return Decision(Action.SKIP, f"canceled while making room for {model}"), steps
        reading, loaded = observed
        decision = policy.before_model(model, prediction, reading, loaded, done)
        if decision.action in (Action.LOAD, Action.SKIP):
            return decision, steps
        if not steps or steps[-1] != decision.action.value:
            steps.append(decision.action.value)
        waited_s = maker.carry_out(decision, reading, done)
        if decision.action is Action.UNLOAD_OTHERS:
            done.unloaded_others = True
        elif decision.action is Action.RESTART:
            done.restarted = True
        elif decision.action is Action.WAIT:
            done.waited_s += waited_s
        elif decision.action is Action.DROP_CACHES:
            done.dropped_caches = True
            done.drop_levels += (decision.drop_level,)
    return Decision(Action.SKIP, f"no decision after {MAX_PREPARATION_STEPS} steps while "
                    f"making room for {model}"), steps
