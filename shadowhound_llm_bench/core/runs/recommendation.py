"""Which model to pick: fastest, best quality and balanced, each with its rule in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

FASTEST_RULE = "highest median decode tokens/s among models that completed their tests"
QUALITY_RULE = ("highest mean quality score (0-100, mean over tasks of each task's mean score); "
                "ties go to the faster model")
BALANCED_RULE = ("highest product of quality score / 100 and decode tokens/s relative to the "
                 "fastest model; models scoring below {min_quality:.0f} are not considered")


@dataclass(frozen=True)
class Candidate:
    """What the recommendation looks at for one model."""

    model: str
    decode_tokens_per_s: Optional[float]
    quality_score: Optional[float]


@dataclass(frozen=True)
class Pick:
    model: str
    rule: str
    value: str  # the number the rule looked at, in words


@dataclass(frozen=True)
class Recommendation:
    fastest: Optional[Pick]
    best_quality: Optional[Pick]
    balanced: Optional[Pick]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def recommend(candidates: Sequence[Candidate], *, min_quality: float = 50.0) -> Recommendation:
    """Pick models by the three rules; a pick is None when no model qualifies."""
    speed = [c for c in candidates if c.decode_tokens_per_s is not None]
    fastest: Optional[Pick] = None
    top_speed = 0.0
    if speed:
        best = max(speed, key=lambda c: c.decode_tokens_per_s or 0.0)
        top_speed = best.decode_tokens_per_s or 0.0
        fastest = Pick(best.model, FASTEST_RULE, f"{top_speed:.1f} tokens/s")
    scored = [c for c in candidates if c.quality_score is not None]
    best_quality: Optional[Pick] = None
    if scored:
        best = max(scored, key=lambda c: (c.quality_score or 0.0, c.decode_tokens_per_s or 0.0))
        best_quality = Pick(best.model, QUALITY_RULE, f"quality {best.quality_score:.1f}")
    balanced: Optional[Pick] = None
    both: List[Candidate] = [c for c in scored if c.decode_tokens_per_s is not None
                             and (c.quality_score or 0.0) >= min_quality]
    if both and top_speed > 0:
        def value(c: Candidate) -> float:
            return (c.quality_score or 0.0) / 100.0 * (c.decode_tokens_per_s or 0.0) / top_speed
        best = max(both, key=value)
        balanced = Pick(best.model, BALANCED_RULE.format(min_quality=min_quality),
                        f"{value(best):.2f} (quality {best.quality_score:.1f}, "
                        f"{best.decode_tokens_per_s:.1f} tokens/s)")
    return Recommendation(fastest=fastest, best_quality=best_quality, balanced=balanced)
