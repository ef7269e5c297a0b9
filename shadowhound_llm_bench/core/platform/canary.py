"""The canary verdict: whether the machine slowed down between the start and end of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class CanaryResult:
    """One canary request: a small model, a fixed prompt, its decode speed."""

    model: str
    decode_tokens_per_s: Optional[float]
    error: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CanaryVerdict:
    slowed_down: bool
    slowdown_percent: Optional[float]
    message: str

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def canary_verdict(before: Optional[CanaryResult], after: Optional[CanaryResult], *,
                   min_decode_tokens_per_s: float, max_slowdown_percent: float) -> CanaryVerdict:
    """Slowed down when the after-run speed is below the minimum or below before by > the limit."""
    if before is None or after is None:
        return CanaryVerdict(False, None, "canary not run before and after")
    b, a = before.decode_tokens_per_s, after.decode_tokens_per_s
    if b is None or a is None:
        return CanaryVerdict(False, None, "canary failed: "
                             + (before.error or after.error or "no decode speed"))
    slowdown = 100.0 * (b - a) / b if b > 0 else 0.0
    rule = (f"rule: after-run decode speed below {min_decode_tokens_per_s:g} tokens/s or more "
            f"than {max_slowdown_percent:g} % below the before-run speed")
    if a < min_decode_tokens_per_s or slowdown > max_slowdown_percent:
        return CanaryVerdict(True, slowdown,
                             f"machine slowed down: canary {b:.1f} -> {a:.1f} tokens/s "
                             f"({slowdown:.0f} % slower; {rule})")
    return CanaryVerdict(False, slowdown, f"machine speed steady: canary {b:.1f} -> {a:.1f} "
                         f"tokens/s ({rule})")
