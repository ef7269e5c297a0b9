"""
A model's history of one metric: each run judged against the previous comparable run.

Comparable means the same machine and the same pinned options; the first run of such a series is
its baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .run_comparison import (
    DEFAULT_ALPHA, DEFAULT_MIN_CHANGE_PERCENT, CellComparison, CellStats, MetricSpec, Verdict,
    adjust_family, change_percent, compare_cell)


@dataclass
class TrendPoint:
    """One run in a model's history of one metric."""

    run_id: str
    machine_id: str
    hostname: str
    started_at: str
    ollama_version: str
    digest: str
    quantization: str
    comparability_key: str
    model_cell: Optional[CellStats]
    task_cells: Dict[str, CellStats] = field(default_factory=dict)


@dataclass(frozen=True)
class TrendStep:
    """A trend point judged against the previous comparable point of the same machine."""

    point: TrendPoint
    previous_run_id: str
    comparison: CellComparison


def judge_trend(spec: MetricSpec, points: Sequence[TrendPoint], *,
                alpha: float = DEFAULT_ALPHA,
                min_change_percent: float = DEFAULT_MIN_CHANGE_PERCENT) -> List[TrendStep]:
    """
    Judge each point against the latest earlier point of its machine with the same options.

    The verdict is the worst over the tasks (one regressed task makes the step a regression);
    the change is that of the model-level mean.
    """
    latest: Dict[Tuple[str, str], TrendPoint] = {}
    steps = []
    for point in points:
        key = (point.machine_id, point.comparability_key)
        before = latest.get(key)
        if point.model_cell is None and not point.task_cells:
            steps.append(TrendStep(point, "", CellComparison(None, Verdict.MISSING)))
            continue
        latest[key] = point
        if before is None:
            first = CellComparison(point.model_cell, Verdict.BASELINE)
            steps.append(TrendStep(point, "", first))
            continue
        steps.append(TrendStep(point, before.run_id, _step_comparison(
            spec, before, point, alpha=alpha, min_change_percent=min_change_percent)))
    return steps


def _step_comparison(spec: MetricSpec, before: TrendPoint, point: TrendPoint, *,
                     alpha: float, min_change_percent: float) -> CellComparison:
    pairs = [(before.task_cells.get(task), cell) for task, cell in point.task_cells.items()]
    if not pairs:
        pairs = [(before.model_cell, point.model_cell)]
    results = adjust_family(
        [(spec, compare_cell(spec, a, b, alpha=alpha, min_change_percent=min_change_percent))
         for a, b in pairs], alpha=alpha, min_change_percent=min_change_percent)
    change = None
    if before.model_cell is not None and point.model_cell is not None:
        change = change_percent(before.model_cell.mean, point.model_cell.mean)
    for verdict in (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.WITHIN_NOISE):
        chosen = [r for r in results if r.verdict == verdict]
        if chosen:
            p_values = [r.p_value for r in chosen if r.p_value is not None]
            pick = max if verdict == Verdict.WITHIN_NOISE else min
            p_value = pick(p_values) if p_values else None
            return CellComparison(point.model_cell, verdict, change_percent=change,
                                  p_value=p_value)
    return CellComparison(point.model_cell, Verdict.UNTESTED, change_percent=change)
