"""
What happens to models Ollama holds that the run did not load for a test.

At the run's start (left by a killed run, loaded by another client), at its end (what the run
loaded), and around a calibration (the models loaded to read the memory sources): the
decider names what is unloaded; models found loaded that the user asked to keep
(keep_models_found_loaded) are never unloaded by a calibration.
"""

from __future__ import annotations

from typing import Sequence

from .decision import Action, Decision
from ..ollama.model_metadata import same_model


def at_run_start(found_loaded: Sequence[str], *, run_models: Sequence[str] = (),
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


def at_run_end(loaded_by_run: Sequence[str]) -> Decision:
    """After the last model (also after cancel or failure): unload what the run loaded."""
    if not loaded_by_run:
        return Decision(Action.KEEP, "the run left no model loaded")
    return Decision(Action.UNLOAD, f"run ended with {', '.join(loaded_by_run)} loaded: "
                    f"unload (every preset leaves Ollama as the run found it)",
                    models_to_unload=tuple(loaded_by_run))


def before_calibration(model: str, loaded: Sequence[str], *,
                       kept: Sequence[str] = ()) -> Decision:
    """
    Before a calibration loads model: unload what is loaded, except the models kept.

    A calibration reads how the memory sources move with one model: the others are unloaded
    so they do not move too. Models found loaded at the start that the user asked to keep stay
    loaded (their memory is part of the baseline the movement is read against).
    """
    keep = [m for m in loaded if any(same_model(m, k) for k in kept)]
    unload = [m for m in loaded if m not in keep]
    kept_text = (f"; {', '.join(keep)} found loaded and kept (keep_models_found_loaded)"
                 if keep else "")
    if not unload:
        return Decision(Action.KEEP, f"calibration with {model}: nothing to unload first"
                        f"{kept_text}")
    return Decision(Action.UNLOAD_OTHERS, f"calibration with {model}: unload "
                    f"{', '.join(unload)} first, so only {model} moves the sources{kept_text}",
                    models_to_unload=tuple(unload))


def after_calibration_load(model: str, *, why: str = "calibration") -> Decision:
    """After the sources were read with model loaded for a calibration: unload it again."""
    return Decision(Action.UNLOAD, f"{why}: unload {model} again, its sources are read",
                    models_to_unload=(model,))
