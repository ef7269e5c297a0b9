"""Summary statistics over repetitions: mean, median, stddev, min, max, percentiles."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
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
        # Not dataclasses.asdict: its deep copy dominated summarizing a run of many tests.
        return {"n": self.n, "mean": self.mean, "median": self.median, "stddev": self.stddev,
                "min": self.min, "max": self.max}


def _finite(values: Iterable[Optional[float]]) -> List[float]:
    return [float(v) for v in values
            if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def summarize(values: Iterable[Optional[float]]) -> Optional[Stats]:
    """Stats of the finite values given; None when there are none."""
    data = _finite(values)
    if not data:
        return None
    mean = statistics.fmean(data)
    # Two-pass sum of squares with fsum: as exact as statistics.stdev for floats, without its
    # Fraction arithmetic (the slowest part of summarizing a run of many tests).
    stddev = math.sqrt(math.fsum((x - mean) ** 2 for x in data) / (len(data) - 1)) \
        if len(data) > 1 else 0.0
    return Stats(
        n=len(data),
        mean=mean,
        median=statistics.median(data),
        stddev=stddev,
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
