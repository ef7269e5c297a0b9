"""What a run left loaded in Ollama and the cleanup verdict, as every report renders them."""

from __future__ import annotations

from typing import Any, List, Mapping, Sequence, Tuple

VERIFIED = "verified"  # /api/ps answered and lists nothing the run loaded
FOLLOWED = "followed"  # a load or an unload was still under way: followed until it ends
UNVERIFIED = "unverified"  # /api/ps did not answer, or still lists a model of the run
UNKNOWN_MODEL = "?"


def cleanup_verdict(*, verified: bool, own_left: Sequence[str],
                    followed: Sequence[str]) -> str:
    """Judge the run's cleanup from /api/ps: verified, followed or unverified."""
    if not verified:
        return UNVERIFIED
    if followed:
        return FOLLOWED
    return UNVERIFIED if own_left else VERIFIED


def left_loaded(end: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """Return the (model, reason) pairs every report lists; ("?", why) if /api/ps was silent."""
    if not end:
        return []
    pairs = [(str(item.get("model") or ""), str(item.get("reason") or ""))
             for item in end.get("still_loaded") or []]
    if pairs:
        return pairs
    if not end.get("verified"):
        return [(UNKNOWN_MODEL, str(end.get("reason") or "what Ollama holds is unknown"))]
    return []


def left_loaded_text(end: Mapping[str, Any]) -> str:
    """One line for a console or a result summary: the models left loaded and the verdict."""
    pairs = left_loaded(end)
    verdict = str(end.get("cleanup") or (VERIFIED if end.get("verified") else UNVERIFIED))
    if not pairs:
        return f"still loaded: none (checked in /api/ps); cleanup {verdict}"
    listed = ", ".join(f"{m} ({r})" for m, r in pairs)
    return f"still loaded: {listed}; cleanup {verdict}"


def left_loaded_lines(end: Mapping[str, Any]) -> List[str]:
    """Console lines: one per model left loaded with its reason, then the cleanup verdict."""
    lines = [f"still loaded: {m} — {r}" for m, r in left_loaded(end)]
    verdict = str(end.get("cleanup") or (VERIFIED if end.get("verified") else UNVERIFIED))
    empty = "" if lines else " (nothing left loaded, checked in /api/ps)"
    return lines + [f"cleanup: {verdict}{empty}"]


def followed_lines(followed: Mapping[str, Any]) -> List[str]:
    """Describe how each model followed after the run ended (residency record "followed")."""
    lines = []
    for item in followed.get("models") or []:
        after = item.get("gone_after_s")
        when = f" {after:.2f} s after the run ended" if isinstance(after, (int, float)) else ""
        lines.append(f"{item.get('model')}: {item.get('outcome')}{when} — {item.get('reason')}")
    return lines
