"""
The contract between the benchmark runner and memory management.

The runner (engine/runner.py) never decides about memory: it asks the guard before, during and
after each model, and the guard asks the one memory policy (decider/policy) and carries out its
decisions on the container and on Ollama. Every decision is recorded with its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, Union

from ..core.memory.memory_reading import MemoryReading


@dataclass
class DecisionRecord:
    """One decision of the policy, with the numbers it was made on."""

    stamp_s: float
    model: str
    action: str  # load | unload_others | unload | restart | wait | skip | abort | retry | alert
    reason: str
    working_set_bytes: int = 0
    predicted_footprint_bytes: int = 0
    model_budget_bytes: int = 0
    ros_reserve_bytes: int = 0
    duration_s: float = 0.0  # time the action took (unload, restart, wait); 0 for decisions


@dataclass
class ModelMemoryRecord:
    """Memory metadata of one model, as it goes into the results JSON."""

    model: str
    predicted_footprint_bytes: int = 0
    prediction_source: str = "unknown"  # measured | metadata | name | unknown
    measured_footprint_bytes: Optional[int] = None
    memory_before_bytes: Optional[int] = None
    memory_peak_bytes: Optional[int] = None
    memory_after_bytes: Optional[int] = None  # after the tests, before unload
    memory_after_unload_bytes: Optional[int] = None
    cleanup_successful: Optional[bool] = None
    unverified: str = ""  # what could not be measured (footprint, cleanup) and why
    unloads: int = 0
    restarts: int = 0
    retries: int = 0
    skip_reason: str = ""
    abort_reason: str = ""
    # Steps taken to make room before the model (the plan's actions_before, as they happened).
    actions_before: List[str] = field(default_factory=list)
    decisions: List[DecisionRecord] = field(default_factory=list)
    # Each time the robot took the memory back while this model loaded, streamed or was cached
    # (engine/preemption.PreemptionRecord as a dict: numbers at the breach, timings, restart).
    preemptions: List[Dict[str, Any]] = field(default_factory=list)
    memory_source: str = ""  # the sources model memory was read from (e.g. cgroup_anon)
    reclaim_s: Optional[float] = None  # unload until the host had the memory back
    drop_caches_calls: int = 0
    measurement_rejected_reason: str = ""  # why the measured footprint was not cached


@dataclass(frozen=True)
class PlannedModel:
    """One line of a plan (what a dry run returns)."""

    model: str
    predicted_footprint_bytes: int
    prediction_source: str
    actions_before: List[str]  # e.g. ["unload_others"], ["restart"], []
    predicted_peak_bytes: int  # container working set predicted while this model runs
    skip_reason: str = ""  # non-empty when the plan already knows it cannot fit


@dataclass(frozen=True)
class RunPlan:
    """Order, predictions and predicted management actions for a run."""

    preset: str
    models: List[PlannedModel]
    batches: List[List[str]]  # models tested together; singletons unless parallel testing is on
    predicted_peak_bytes: int
    predicted_unloads: int
    predicted_restarts: int
    model_budget_bytes: int
    memory_sources: str = ""  # which sources model memory is read from, and why
    # What the memory-source calibration does before the first model (the policy's steps:
    # e.g. ["unload_others", "calibrate phi4:14b", "unload"]); [] when it does not run.
    calibration_steps: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Proceed:
    """The model may be loaded; keep_alive to use for its requests."""

    keep_alive: Union[int, str]


@dataclass(frozen=True)
class Skip:
    """The model must not be loaded; the reason carries the numbers."""

    reason: str


class MemoryGuard(Protocol):
    """What the runner asks of memory management."""

    def plan(self, models: Sequence[str]) -> RunPlan:
        """Order the models and predict footprints and actions; changes nothing."""

    def before_model(self, model: str,
                     together_with: Sequence[str] = ()) -> Union[Proceed, Skip]:
        """
        Make room for the model (unload, restart, wait) or say why it cannot run.

        together_with: batch-mates of a plan batch that will be loaded beside it (parallel
        testing); room is held for them, and a Skip then may mean only "not beside them".
        """

    def check_pressure(self, model: str) -> Optional[str]:
        """While a model is being tested: an abort reason when the robot needs the memory."""

    def on_load_failure(self, model: str, error: str, attempt: int) -> bool:
        """Recover after a failed load (attempt counts from 1); True means retry the load."""

    def on_server_lost(self, model: str, error: str, attempt: int) -> bool:
        """
        Ollama stopped answering mid-run (attempt counts from 1 per model).

        The guard asks the policy and recovers (restarts the container); True means the server
        answers again and the model may be retried. Optional for guards: a runner treats a
        guard without it as one that cannot recover.
        """

    def after_model(self, model: str) -> None:
        """Unload and verify that the memory came back; restart when it did not."""

    def record(self, model: str) -> ModelMemoryRecord:
        """Return the memory record of a model tested (or skipped) in this run."""

    def latest_reading(self) -> Optional[MemoryReading]:
        """Return the most recent memory reading; never blocks on I/O."""

    def timeline(self) -> List[MemoryReading]:
        """Every reading of this run, oldest first (for the memory plot)."""

    def decisions(self) -> List[DecisionRecord]:
        """Every decision of this run, oldest first (load/unload/restart marks in the plot)."""
