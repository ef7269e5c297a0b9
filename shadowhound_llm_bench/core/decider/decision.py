"""What the one decider says: its actions, a decision, and what has been done to make room."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional, Tuple

from .action_costs import SEED_COSTS, ActionCosts
from .policy_settings import KeepAlive


class Action(str, Enum):
    """What the policy tells the memory guard to do (DecisionRecord.action uses these values)."""

    LOAD = "load"
    UNLOAD_OTHERS = "unload_others"
    UNLOAD = "unload"
    RESTART = "restart"
    WAIT = "wait"
    SKIP = "skip"
    ABORT = "abort"
    RETRY = "retry"
    ALERT = "alert"
    KEEP = "keep"
    PREEMPT = "preempt"  # cut the load or stream in flight and unload: the robot needs memory
    END_RUN = "end_run"
    DROP_CACHES = "drop_caches"


@dataclass(frozen=True)
class LoadedModel:
    """A model Ollama holds now (from /api/ps) and its best known footprint."""

    model: str
    footprint_bytes: int


@dataclass(frozen=True)
class Decision:
    """One decision and the numbers behind it."""

    action: Action
    reason: str
    models_to_unload: Tuple[str, ...] = ()
    keep_alive: Optional[KeepAlive] = None
    restart_first: bool = False  # RETRY: restart the container before the retry
    # DROP_CACHES: the drop_caches level, the least that returns what is held: 1 (page cache)
    # when free memory is short of what available memory already counts, 3 (also the
    # shrinkers, the GPU driver's pool among them) otherwise.
    drop_level: int = 3


@dataclass
class Preparation:
    """What the guard has already done to make room for the current model."""

    empty_working_set_bytes: int  # container working set with no model loaded (after a restart)
    unloaded_others: bool = False
    restarted: bool = False
    waited_s: float = 0.0
    # Batch-mates admitted to run side by side that are not loaded yet: their predicted bytes
    # are held back as if they were loaded already.
    reserved_bytes: int = 0
    reserved_for: Tuple[str, ...] = ()
    # What an unload and a restart cost on this machine (cost-aware room making).
    costs: ActionCosts = SEED_COSTS
    # Page-cache drop: possible here (privilege, configured) and already done for this model.
    can_drop_caches: bool = False
    dropped_caches: bool = False
    drop_levels: Tuple[int, ...] = ()  # the levels dropped so far, in order
