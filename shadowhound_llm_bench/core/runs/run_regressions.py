"""
Regressions of a new run: each model's metrics against its previous comparable run, beyond noise.

Every cell of the run is tested against the same cell of the model's previous comparable run,
the p-values Holm-adjusted together; a model keeps its worst regression per metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from .run_comparison import (
    ALL_TASKS, DEFAULT_ALPHA, DEFAULT_MIN_CHANGE_PERCENT, METRICS, TEST_NAME, CellComparison,
    MetricSpec, RunSnapshot, Verdict, adjust_family, compare_cell, compared_tasks, metric_spec,
    not_comparable_reasons, p_value_text)


@dataclass(frozen=True)
class Regression:
    """A metric of a model worse than in an earlier comparable run, beyond noise."""

    model: str
    metric: str
    task: str
    baseline_run_id: str
    change_percent: float
    p_value: float

    def sentence(self) -> str:
        spec = metric_spec(self.metric)
        where = f" on {self.task}" if self.task != ALL_TASKS else ""
        return (f"{self.model}: {spec.label} {spec.words(False)} than run "
                f"{self.baseline_run_id} by {abs(self.change_percent):.0f} %{where}, "
                f"beyond noise ({TEST_NAME}, Holm-adjusted {p_value_text(self.p_value)})")

    def to_dict(self) -> Dict[str, Any]:
        return {"model": self.model, "metric": self.metric, "task": self.task,
                "baseline_run_id": self.baseline_run_id,
                "change_percent": self.change_percent, "p_value": self.p_value,
                "sentence": self.sentence()}


def find_regressions(current: RunSnapshot, previous: Mapping[str, RunSnapshot], *,
                     alpha: float = DEFAULT_ALPHA,
                     min_change_percent: float = DEFAULT_MIN_CHANGE_PERCENT) -> List[Regression]:
    """
    Return each model's worst regression per metric against its previous comparable run.

    previous maps a model to the run it is compared with (the latest earlier comparable run
    that holds the model); a model without one is not judged.
    """
    tested: List[Tuple[MetricSpec, str, str, str, CellComparison]] = []
    for model, snap in sorted(current.models.items()):
        if snap.status != "ok":
            continue  # a failed or canceled model's few tests say nothing about its speed
        earlier = previous.get(model)
        if earlier is None or model not in earlier.models or not_comparable_reasons(
                earlier, current):
            continue
        base_cells = earlier.models[model].cells
        for spec in METRICS:
            for task in compared_tasks(snap, spec.key):
                result = compare_cell(spec, base_cells.get((task, spec.key)),
                                      snap.cells[(task, spec.key)], alpha=alpha,
                                      min_change_percent=min_change_percent)
                tested.append((spec, model, task, earlier.run_id, result))
    adjusted = adjust_family([(t[0], t[4]) for t in tested], alpha=alpha,
                             min_change_percent=min_change_percent)
    worst: Dict[Tuple[str, str], Regression] = {}
    for (spec, model, task, run_id, _), result in zip(tested, adjusted):
        if result.verdict != Verdict.REGRESSED:
            continue
        assert result.change_percent is not None and result.p_value is not None
        candidate = Regression(model=model, metric=spec.key, task=task,
                               baseline_run_id=run_id, change_percent=result.change_percent,
                               p_value=result.p_value)
        known = worst.get((model, spec.key))
        if known is None or abs(candidate.change_percent) > abs(known.change_percent):
            worst[(model, spec.key)] = candidate
    order = {spec.key: i for i, spec in enumerate(METRICS)}
    return sorted(worst.values(), key=lambda r: (r.model, order[r.metric]))
