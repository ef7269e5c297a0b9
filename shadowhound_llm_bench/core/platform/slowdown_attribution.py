"""
Why a run slowed down: thermal throttling, a power-mode change, or neither.

A slowdown is the canary's verdict (after-run decode speed below the before-run one) or a model
whose decode speed was measured while throttled. Throttling is the clock below its maximum while
hot (energy_accounting); a power-mode change is a different nvpmodel mode at the end of the run
than at its start, or more than one mode seen while a model ran. When neither happened the
slowdown is not the machine's clocks: on Thor that points at the reload slowdown (memory).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

# A share of a model's decode time spent throttled above this marks its speed as throttled.
THROTTLED_SHARE = 0.05


def model_slowdown_note(energy: Optional[Mapping[str, Any]]) -> str:
    """One line for a model: its decode speed was measured while throttled, or "" if not."""
    if not energy:
        return ""
    decode = (energy.get("phases") or {}).get("decode") or {}
    duration = float(decode.get("duration_s") or 0.0)
    throttled = float(decode.get("throttled_s") or 0.0)
    notes = []
    if duration > 0 and throttled / duration > THROTTLED_SHARE:
        notes.append(f"throttled {100.0 * throttled / duration:.0f} % of decode "
                     f"(peak {decode.get('peak_temp_c')} degC)")
    modes = energy.get("power_modes") or []
    if len(modes) > 1:
        notes.append(f"power mode changed while it ran ({' -> '.join(modes)})")
    return "; ".join(notes)


def attribute_slowdown(*, canary_verdict: Optional[Mapping[str, Any]],
                       canary_state: Mapping[str, Mapping[str, Any]],
                       machine_start: Optional[Mapping[str, Any]],
                       machine_end: Optional[Mapping[str, Any]],
                       model_energy: Mapping[str, Optional[Mapping[str, Any]]]
                       ) -> Dict[str, Any]:
    """
    Return {"slowed_down", "cause", "message"} for the run.

    cause is throttling, power_mode_change (or both joined by +), neither or not_measured.
    """
    slowed = bool(canary_verdict and canary_verdict.get("slowed_down"))
    throttled_models = {m: model_slowdown_note(e) for m, e in model_energy.items()}
    throttled_models = {m: note for m, note in throttled_models.items() if "throttled" in note}
    after = canary_state.get("after") or {}
    before = canary_state.get("before") or {}
    causes: List[str] = []
    details: List[str] = []
    if float(after.get("throttled_s") or 0.0) > 0.0 or throttled_models:
        causes.append("throttling")
        if after.get("throttled_s"):
            details.append(f"the after-run canary ran {after['throttled_s']} s throttled "
                           f"(peak {after.get('peak_temp_c')} degC)")
        for model, note in throttled_models.items():
            details.append(f"{model}: {note}")
    start_mode = (machine_start or {}).get("power_mode") or ""
    end_mode = (machine_end or {}).get("power_mode") or ""
    modes_seen = _modes(before, after, model_energy)
    if (start_mode and end_mode and start_mode != end_mode) or len(modes_seen) > 1:
        causes.append("power_mode_change")
        details.append(f"power mode {start_mode or '?'} at the start, {end_mode or '?'} at the "
                       f"end (seen: {', '.join(modes_seen) or '-'})")
    measured = bool(before.get("measured") or after.get("measured")
                    or any(e for e in model_energy.values()) or start_mode)
    if causes:
        cause = causes[0] if len(causes) == 1 else "+".join(causes)
        message = ("slowdown came with " if slowed else "no canary slowdown, but ") \
            + " and ".join(c.replace("_", " ") for c in causes) + ": " + "; ".join(details)
    elif not measured:
        cause = "not_measured"
        message = "machine state not measured (no power-mode or thermal source)"
    else:
        cause = "neither"
        message = ("slowdown came with neither throttling nor a power-mode change: not the "
                   "clocks; look at memory (reload cycles, fragmentation)") if slowed else \
            "no throttling and no power-mode change during the run"
    return {"slowed_down": slowed, "cause": cause, "message": message}


def _modes(before: Mapping[str, Any], after: Mapping[str, Any],
           model_energy: Mapping[str, Optional[Mapping[str, Any]]]) -> List[str]:
    seen: List[str] = []
    sources: Sequence[Any] = [before.get("power_modes"), after.get("power_modes")] + [
        (e or {}).get("power_modes") for e in model_energy.values()]
    for modes in sources:
        for mode in modes or []:
            if mode not in seen:
                seen.append(mode)
    return seen
