"""
Runs side by side: which model got faster or slower, and whether the change is beyond noise.

A run is reduced to a RunSnapshot: its pinned options, machine and, per model and task, the
statistics (n, mean, stddev, ...) of each compared metric over the repetitions. Two cells are
tested with Welch's t-test from those statistics (SciPy), so a run folder and a history
database give the same verdict without keeping every raw value. The same cell tests judge a new
run's regressions (run_regressions) and a model's history of a metric (metric_trend).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from scipy import stats as scipy_stats

ALL_TASKS = ""  # the task name of a model-level cell (over every task, or one value per model)
DEFAULT_ALPHA = 0.05
# A change this small is never called faster or slower, however many repetitions agree.
DEFAULT_MIN_CHANGE_PERCENT = 1.0
TEST_NAME = "Welch's t-test"
TEST_DETAIL = ("Welch's t-test (scipy.stats.ttest_ind_from_stats, equal_var=False) over the "
               "repetitions' count, mean and standard deviation, p-values Holm-adjusted over "
               "the cells compared together")


class ComparisonError(ValueError):
    """Runs that cannot be compared (no model in common, unknown metric, ...)."""


@dataclass(frozen=True)
class MetricSpec:
    """A compared metric: its key, the words shown, and which direction is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    speed: bool  # verdict words faster/slower (else better/worse)
    display_scale: float = 1.0  # stored value x scale = shown value (bytes -> GiB)

    def words(self, improved: bool) -> str:
        if self.speed:
            return "faster" if improved else "slower"
        return "better" if improved else "worse"


METRICS: Tuple[MetricSpec, ...] = (
    MetricSpec("decode_tps", "decode tok/s", "tok/s", True, True),
    MetricSpec("ttft_ms", "TTFT", "ms", False, True),
    MetricSpec("prompt_tps", "prompt tok/s", "tok/s", True, True),
    MetricSpec("load_s", "load time", "s", False, True),
    MetricSpec("quality", "quality", "%", True, False),
    MetricSpec("peak_bytes", "peak memory", "GiB", False, False, display_scale=1.0 / 2**30),
    MetricSpec("j_per_token", "energy per token", "J/token", False, False),
)
METRICS_BY_KEY: Dict[str, MetricSpec] = {m.key: m for m in METRICS}

# Options that change what a metric means: runs that differ in one are not compared.
PINNED_OPTIONS = ("num_ctx", "num_predict", "temperature")


def metric_spec(key: str) -> MetricSpec:
    """Return the spec of a metric key; raises ComparisonError naming the known keys."""
    spec = METRICS_BY_KEY.get(key)
    if spec is None:
        raise ComparisonError(f"unknown metric {key!r} (known: {', '.join(METRICS_BY_KEY)})")
    return spec


@dataclass(frozen=True)
class CellStats:
    """One metric of one model and task in one run, over its repetitions."""

    n: int
    mean: float
    stddev: float
    median: float
    min: float
    max: float

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Optional["CellStats"]:
        try:
            n = int(data["n"])
            mean = float(data["mean"])
        except (KeyError, TypeError, ValueError):
            return None
        if n < 1 or not math.isfinite(mean):
            return None

        def num(key: str, default: float) -> float:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) else default
        return cls(n=n, mean=mean, stddev=num("stddev", 0.0), median=num("median", mean),
                   min=num("min", mean), max=num("max", mean))

    @classmethod
    def single(cls, value: float) -> "CellStats":
        return cls(n=1, mean=value, stddev=0.0, median=value, min=value, max=value)


@dataclass
class ModelSnapshot:
    """One model of a run: identity (digest, quantization) and its cells."""

    model: str
    status: str = ""
    digest: str = ""
    quantization: str = ""
    parameter_size: str = ""
    size_bytes: int = 0
    # (task, metric key) -> stats; task ALL_TASKS is the model-level cell.
    cells: Dict[Tuple[str, str], CellStats] = field(default_factory=dict)

    def tasks(self) -> List[str]:
        return sorted({task for task, _ in self.cells if task != ALL_TASKS})


@dataclass
class RunSnapshot:
    """What a comparison needs of a run, from a run folder or from the history database."""

    run_id: str
    machine_id: str
    machine: Dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    ended_at: str = ""
    status: str = ""
    ollama_version: str = ""
    options: Dict[str, Any] = field(default_factory=dict)
    suite_name: str = ""
    suite_version: str = ""
    models: Dict[str, ModelSnapshot] = field(default_factory=dict)
    source: str = ""  # the folder or database it was read from

    def pinned(self) -> Dict[str, Any]:
        """Return the options that must match for two runs to be compared."""
        out: Dict[str, Any] = {name: self.options.get(name) for name in PINNED_OPTIONS}
        out["suite"] = f"{self.suite_name}@{self.suite_version}"
        return out

    def comparability_key(self) -> str:
        return json.dumps(self.pinned(), sort_keys=True)


def suite_version(suite: Mapping[str, Any]) -> str:
    """Return the suite's declared version, else a short digest of its tasks (what is asked)."""
    declared = suite.get("version")
    if declared:
        return str(declared)
    tasks = json.dumps(suite.get("tasks") or [], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(tasks.encode("utf-8")).hexdigest()[:12]


def not_comparable_reasons(baseline: RunSnapshot, other: RunSnapshot) -> List[str]:
    """Return why two runs may not be compared (empty: comparable)."""
    a, b = baseline.pinned(), other.pinned()
    return [f"{name} {b[name]} vs {a[name]}" for name in a if a[name] != b[name]]


# ------------------------------------------------------------------------------------ verdicts
class Verdict(str, Enum):
    """The outcome of one cell against the baseline."""

    BASELINE = "baseline"
    IMPROVED = "improved"
    REGRESSED = "regressed"
    WITHIN_NOISE = "within noise"
    UNTESTED = "untested"  # fewer than two repetitions on a side
    NOT_COMPARABLE = "not comparable"
    MISSING = "missing"


@dataclass(frozen=True)
class CellComparison:
    """A cell of the comparison table: value, change against the baseline and the verdict."""

    stats: Optional[CellStats]
    verdict: Verdict
    change_percent: Optional[float] = None
    p_value: Optional[float] = None

    def words(self, spec: MetricSpec) -> str:
        if self.verdict == Verdict.IMPROVED:
            return spec.words(True)
        if self.verdict == Verdict.REGRESSED:
            return spec.words(False)
        return self.verdict.value


def welch_p_value(a: CellStats, b: CellStats) -> Optional[float]:
    """
    Return the two-sided p-value of Welch's t-test between two cells, or None below n=2.

    Two cells without any spread (a deterministic measurement) differ for certain when their
    means differ (p 0) and not at all when they agree (p 1): the t statistic is undefined there.
    """
    if a.n < 2 or b.n < 2:
        return None
    if a.stddev == 0.0 and b.stddev == 0.0:
        return 1.0 if math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-12) else 0.0
    result = scipy_stats.ttest_ind_from_stats(
        mean1=a.mean, std1=a.stddev, nobs1=a.n, mean2=b.mean, std2=b.stddev, nobs2=b.n,
        equal_var=False)
    p_value = float(result.pvalue)
    return p_value if math.isfinite(p_value) else None


def p_value_text(p_value: float) -> str:
    """Return 'p=0.012', or 'p<0.001' (also for a difference without any spread)."""
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.2g}"


def change_percent(baseline: float, value: float) -> Optional[float]:
    if baseline == 0.0:
        return None
    return (value - baseline) / abs(baseline) * 100.0


def _decide(spec: MetricSpec, change: Optional[float], p_value: Optional[float], *,
            alpha: float, min_change_percent: float) -> Verdict:
    if p_value is None:
        return Verdict.UNTESTED
    if change is None or p_value >= alpha or abs(change) < min_change_percent:
        return Verdict.WITHIN_NOISE
    return Verdict.IMPROVED if (change > 0) == spec.higher_is_better else Verdict.REGRESSED


def compare_cell(spec: MetricSpec, baseline: Optional[CellStats], current: Optional[CellStats],
                 *, alpha: float = DEFAULT_ALPHA,
                 min_change_percent: float = DEFAULT_MIN_CHANGE_PERCENT) -> CellComparison:
    """Compare one cell with its baseline: change in percent of the mean and the verdict."""
    if current is None or baseline is None:
        return CellComparison(stats=current, verdict=Verdict.MISSING)
    change = change_percent(baseline.mean, current.mean)
    p_value = welch_p_value(baseline, current)
    return CellComparison(stats=current, change_percent=change, p_value=p_value,
                          verdict=_decide(spec, change, p_value, alpha=alpha,
                                          min_change_percent=min_change_percent))


def holm_adjusted(p_values: Sequence[Optional[float]]) -> List[Optional[float]]:
    """
    Return Holm-Bonferroni adjusted p-values (None stays None).

    One run compared with another tests every model x task x metric cell; without this
    family-wise correction about one cell in twenty would look "beyond noise" by chance.
    """
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: List[Optional[float]] = list(p_values)
    running = 0.0
    for rank, (p_value, index) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p_value))
        out[index] = running
    return out


def adjust_family(family: Sequence[Tuple[MetricSpec, CellComparison]], *, alpha: float,
                  min_change_percent: float) -> List[CellComparison]:
    """Return the cells of one family with Holm-adjusted p-values and verdicts decided anew."""
    adjusted = holm_adjusted([cell.p_value for _, cell in family])
    return [dataclasses.replace(cell, p_value=p_value, verdict=_decide(
        spec, cell.change_percent, p_value, alpha=alpha,
        min_change_percent=min_change_percent)) if cell.p_value is not None else cell
        for (spec, cell), p_value in zip(family, adjusted)]


# ------------------------------------------------------------------------------ the comparison
@dataclass
class MetricTable:
    """One metric: rows (model, task), one cell per run."""

    metric: MetricSpec
    rows: List[Tuple[str, str]]
    cells: Dict[Tuple[str, str], List[CellComparison]]


@dataclass
class RunColumn:
    """A run as a column: its id, machine, and why it is not comparable (if it is not)."""

    run_id: str
    machine_id: str
    started_at: str
    ollama_version: str
    pinned: Dict[str, Any]
    not_comparable: List[str]
    model_notes: List[str]  # digest or quantization changes against the baseline


@dataclass
class Comparison:
    """Every metric table of a comparison, and the runs in order (the first is the baseline)."""

    runs: List[RunColumn]
    tables: List[MetricTable]
    alpha: float
    min_change_percent: float
    test: str = TEST_DETAIL


def _model_notes(baseline: RunSnapshot, other: RunSnapshot) -> List[str]:
    notes = []
    for name, model in other.models.items():
        base = baseline.models.get(name)
        if base is None:
            continue
        if base.digest and model.digest and base.digest != model.digest:
            notes.append(f"{name}: digest {model.digest[:12]} vs {base.digest[:12]}")
        if base.quantization != model.quantization:
            notes.append(f"{name}: quantization {model.quantization or '?'} vs "
                         f"{base.quantization or '?'}")
    return notes


def compare_runs(runs: Sequence[RunSnapshot], *, metrics: Optional[Sequence[str]] = None,
                 alpha: float = DEFAULT_ALPHA,
                 min_change_percent: float = DEFAULT_MIN_CHANGE_PERCENT) -> Comparison:
    """Compare runs against the first; raises ComparisonError when a run shares no model."""
    if not runs:
        raise ComparisonError("give at least one run")
    if not 0.0 < alpha < 1.0:
        raise ComparisonError(f"alpha must lie between 0 and 1, got {alpha}")
    baseline = runs[0]
    if not baseline.models:
        raise ComparisonError(f"run {baseline.run_id} has no model results")
    for other in runs[1:]:
        if not set(other.models) & set(baseline.models):
            raise ComparisonError(
                f"run {other.run_id} has no model in common with the baseline run "
                f"{baseline.run_id} ({', '.join(sorted(other.models)) or 'none'} vs "
                f"{', '.join(sorted(baseline.models))})")
    specs = [metric_spec(k) for k in metrics] if metrics else list(METRICS)
    columns = [RunColumn(run_id=r.run_id, machine_id=r.machine_id, started_at=r.started_at,
                         ollama_version=r.ollama_version, pinned=r.pinned(),
                         not_comparable=not_comparable_reasons(baseline, r) if i else [],
                         model_notes=_model_notes(baseline, r) if i else [])
               for i, r in enumerate(runs)]
    tables = []
    for spec in specs:
        rows = sorted({(model, task) for run in runs for model, snap in run.models.items()
                       for task in compared_tasks(snap, spec.key)})
        if not rows:
            continue  # e.g. J/token on runs without an energy reading
        cells: Dict[Tuple[str, str], List[CellComparison]] = {}
        for row in rows:
            model, task = row
            base = _cell(baseline, model, task, spec.key)
            line = [CellComparison(stats=base, verdict=Verdict.BASELINE if base
                                   else Verdict.MISSING)]
            for column, run in zip(columns[1:], runs[1:]):
                current = _cell(run, model, task, spec.key)
                if column.not_comparable and current is not None:
                    line.append(CellComparison(
                        stats=current, verdict=Verdict.NOT_COMPARABLE,
                        change_percent=change_percent(base.mean, current.mean) if base
                        else None))
                    continue
                line.append(compare_cell(spec, base, current, alpha=alpha,
                                         min_change_percent=min_change_percent))
            cells[row] = line
        tables.append(MetricTable(metric=spec, rows=rows, cells=cells))
    for column in range(1, len(runs)):
        family = [(t, row) for t in tables for row in t.rows]
        adjusted = adjust_family([(t.metric, t.cells[row][column]) for t, row in family],
                                 alpha=alpha, min_change_percent=min_change_percent)
        for (table, row), cell in zip(family, adjusted):
            table.cells[row][column] = cell
    return Comparison(runs=columns, tables=tables, alpha=alpha,
                      min_change_percent=min_change_percent)


def compared_tasks(snap: ModelSnapshot, key: str) -> List[str]:
    """Return the tasks a metric is compared on: each task, or the model level when none."""
    tasks = sorted(task for task, k in snap.cells if k == key and task != ALL_TASKS)
    if tasks:
        return tasks
    return [ALL_TASKS] if (ALL_TASKS, key) in snap.cells else []


def _cell(run: RunSnapshot, model: str, task: str, key: str) -> Optional[CellStats]:
    snap = run.models.get(model)
    return snap.cells.get((task, key)) if snap else None
