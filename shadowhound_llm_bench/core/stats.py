"""Summary statistics over repetitions: mean, median, stddev, min, max, percentiles."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional


@dataclass(frozen=True)
class Stats:
    """Statistics of one metric; stddev is the sample standard deviation (0 for one value)."""

    n: int
    mean: float
    median: float
    stddev: float
    min: float
    max: float

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def _finite(values: Iterable[Optional[float]]) -> List[float]:
    return [float(v) for v in values
            if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def summarize(values: Iterable[Optional[float]]) -> Optional[Stats]:
    """Stats of the finite values given; None when there are none."""
    data = _finite(values)
    if not data:
        return None
    return Stats(
        n=len(data),
        mean=statistics.fmean(data),
        median=statistics.median(data),
        stddev=statistics.stdev(data) if len(data) > 1 else 0.0,
        min=min(data),
        max=max(data),
    )


def percentile(values: Iterable[Optional[float]], pct: float) -> Optional[float]:
    """Return the pct-th linear-interpolated percentile of the finite values, or None."""
    data = sorted(_finite(values))
    if not data:
        return None
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    pos = (len(data) - 1) * pct / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)
