"""How a goal ended, in the RunBenchmark result's terms: goal state, error code and message."""

# The codes mirror the constants of RunBenchmark.Result (a test checks they agree), so code
# without ROS (the CLI, reports) speaks the same language as the action.

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from ..runs.run_status import is_success


class GoalErrorCode(IntEnum):
    """Why a goal ended as it did; NONE when it ran as asked."""

    NONE = 0
    UNKNOWN = 1
    INVALID_GOAL = 2
    BUSY = 3
    OLLAMA_UNAVAILABLE = 4
    MODELS_NOT_TESTED = 5
    CANCELED = 6
    INTERRUPTED = 7
    NOT_ACTIVE = 8


class GoalState(str, Enum):
    """The terminal state of the action goal."""

    SUCCEEDED = "succeeded"
    ABORTED = "aborted"
    CANCELED = "canceled"


@dataclass(frozen=True)
class GoalOutcome:
    """Terminal goal state with the code and the reason in words (empty for a clean success)."""

    state: GoalState
    error_code: GoalErrorCode
    error_msg: str

    @property
    def success(self) -> bool:
        """Tell whether the goal is a clean success: every model tested, or a plan."""
        return self.state is GoalState.SUCCEEDED and self.error_code is GoalErrorCode.NONE


OLLAMA_UNUSABLE_PREFIX = "Ollama at "


def outcome_of_run(status: str, message: str, *, cancel_requested: bool) -> GoalOutcome:
    """
    Map a run's status and message to the goal's state, code and message.

    ok / planned succeed cleanly; partial succeeds (the run did what it could and reported it)
    with MODELS_NOT_TESTED; failed aborts (OLLAMA_UNAVAILABLE when the server could not be
    used at all); canceled is CANCELED when the client asked, INTERRUPTED when the node stopped
    it (SIGINT, deactivation).
    """
    if is_success(status):
        return GoalOutcome(GoalState.SUCCEEDED, GoalErrorCode.NONE, "")
    if status == "partial":
        return GoalOutcome(GoalState.SUCCEEDED, GoalErrorCode.MODELS_NOT_TESTED, message)
    if status == "canceled":
        if cancel_requested:
            return GoalOutcome(GoalState.CANCELED, GoalErrorCode.CANCELED, message)
        return GoalOutcome(GoalState.ABORTED, GoalErrorCode.INTERRUPTED, message)
    if status == "failed":
        code = (GoalErrorCode.OLLAMA_UNAVAILABLE if message.startswith(OLLAMA_UNUSABLE_PREFIX)
                else GoalErrorCode.MODELS_NOT_TESTED)
        return GoalOutcome(GoalState.ABORTED, code, message)
    return GoalOutcome(GoalState.ABORTED, GoalErrorCode.UNKNOWN, message or status)
