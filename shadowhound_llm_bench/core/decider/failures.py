"""Failures the decider answers: a refused load, unanswered requests, a server that is gone."""

from __future__ import annotations

from .cache_drop import is_memory_refusal
from .decision import Action, Decision
from ..memory.memory_reading import ContainerState
from .policy_settings import PolicySettings

# Requests in a row without an answer (no server, model gone) that end a model's tests.
UNANSWERED_REQUESTS_LIMIT = 2


def on_load_failure(settings: PolicySettings, model: str, error: str, attempt: int, *,
                    can_drop_caches: bool = False) -> Decision:
    """
    After a failed load (attempt from 1): RETRY (after a restart) or SKIP with the error.

    Ollama's "requires more system memory" refusal is answered by a page-cache drop first
    (DROP_CACHES, then retry without a restart) when that is allowed.
    """
    s = settings
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


def on_unanswered_requests(model: str, *, unanswered_in_a_row: int,
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


def after_model_not_loaded(settings: PolicySettings, model: str, *, failed_load: bool) -> Decision:
    """After a model Ollama does not hold: RESTART for a clean state after a failed load."""
    if failed_load and settings.restart_on_load_failure:
        return Decision(Action.RESTART, f"{model} failed to load: restart for a clean state "
                        "before the next model")
    return Decision(Action.KEEP, f"{model} is not loaded: nothing to unload")


def on_server_lost(settings: PolicySettings, model: str, error: str, attempt: int,
                   container_state: ContainerState) -> Decision:
    """
    Ollama stopped answering mid-run (attempt from 1): RESTART, then retry the model once.

    SKIP means give up: the preset does not restart, the container is gone (removed), or a
    restart already did not bring the server back.
    """
    s = settings
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
