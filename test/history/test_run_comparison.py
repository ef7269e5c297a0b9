"""Verdicts of the comparison: a real regression is flagged, a change inside noise is not."""

import random

import pytest
from scipy import stats as scipy_stats

from shadowhound_llm_bench.core.runs.metric_trend import TrendPoint, judge_trend
from shadowhound_llm_bench.core.runs.run_comparison import (
    ALL_TASKS, CellStats, ComparisonError, ModelSnapshot, RunSnapshot, Verdict, compare_cell,
    compare_runs, holm_adjusted, metric_spec, welch_p_value)
from shadowhound_llm_bench.core.runs.run_regressions import find_regressions
from shadowhound_llm_bench.core.runs.stats import summarize

DECODE = metric_spec("decode_tps")
OPTIONS = {"num_ctx": 4096, "num_predict": 512, "temperature": 0.0}


def _cell(values):
    s = summarize(values)
    return CellStats(n=s.n, mean=s.mean, stddev=s.stddev, median=s.median, min=s.min,
                     max=s.max)


def _samples(mean, sd_percent, n=5, seed=1):
    rng = random.Random(seed)
    return [rng.gauss(mean, mean * sd_percent / 100.0) for _ in range(n)]


def _run(run_id, cells_by_model, *, options=OPTIONS, status="ok", machine="m1",
         started="2026-11-01T10:00:00+00:00"):
    models = {}
    for model, values in cells_by_model.items():
        snap = ModelSnapshot(model=model, status=status)
        snap.cells[("status_report", "decode_tps")] = _cell(values)
        models[model] = snap
    return RunSnapshot(run_id=run_id, machine_id=machine, started_at=started,
                       options=dict(options), suite_name="robot_mission", suite_version="v1",
                       models=models)


def test_welch_from_statistics_equals_the_test_on_the_raw_repetitions():
    a, b = _samples(37.0, 3, seed=1), _samples(35.0, 5, seed=2)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p_value(_cell(a), _cell(b)) == pytest.approx(expected, rel=1e-9)


def test_a_planted_regression_is_flagged_with_its_size():
    before = _run("20261101T100000Z", {"phi4:14b": _samples(37.0, 1, seed=3)})
    after = _run("20261102T100000Z", {"phi4:14b": _samples(28.5, 1, seed=4)},
                 started="2026-11-02T10:00:00+00:00")
    found = find_regressions(after, {"phi4:14b": before})
    assert len(found) == 1
    assert found[0].metric == "decode_tps"
    assert found[0].change_percent == pytest.approx(-23, abs=1.5)
    assert "slower than run 20261101T100000Z by 23 %" in found[0].sentence()
    assert "beyond noise" in found[0].sentence()


def test_a_difference_inside_the_noise_is_not_flagged():
    # 2 % apart with 8 % spread over 5 repetitions: no test can tell them apart.
    before = _cell(_samples(37.0, 8, seed=5))
    after = _cell(_samples(36.3, 8, seed=6))
    result = compare_cell(DECODE, before, after)
    assert result.verdict == Verdict.WITHIN_NOISE
    assert result.p_value > 0.05
    assert find_regressions(_run("b", {"m": _samples(36.3, 8, seed=6)}),
                            {"m": _run("a", {"m": _samples(37.0, 8, seed=5)})}) == []


def test_faster_and_a_lower_ttft_count_as_improvements():
    assert compare_cell(DECODE, _cell([10, 10.1, 9.9]), _cell([12, 12.1, 11.9])).verdict \
        == Verdict.IMPROVED
    ttft = metric_spec("ttft_ms")
    result = compare_cell(ttft, _cell([100, 101, 99]), _cell([80, 81, 79]))
    assert result.verdict == Verdict.IMPROVED and result.words(ttft) == "faster"


def test_a_single_value_is_untested_and_no_spread_decides_by_the_means():
    assert compare_cell(DECODE, CellStats.single(10.0), CellStats.single(5.0)).verdict \
        == Verdict.UNTESTED
    assert compare_cell(DECODE, _cell([160.0] * 3), _cell([120.0] * 3)).verdict \
        == Verdict.REGRESSED
    assert compare_cell(DECODE, _cell([160.0] * 3), _cell([160.0] * 3)).verdict \
        == Verdict.WITHIN_NOISE


def test_a_change_under_the_minimum_is_within_noise_even_when_significant():
    result = compare_cell(DECODE, _cell([100.0, 100.01, 99.99]), _cell([99.5, 99.51, 99.49]),
                          min_change_percent=1.0)
    assert result.p_value < 0.05 and result.verdict == Verdict.WITHIN_NOISE


def test_runs_with_other_pinned_options_are_marked_not_comparable():
    base = _run("a", {"m": _samples(37, 1)})
    other = _run("b", {"m": _samples(20, 1)}, options={**OPTIONS, "num_ctx": 8192})
    comparison = compare_runs([base, other])
    assert comparison.runs[1].not_comparable == ["num_ctx 8192 vs 4096"]
    table = comparison.tables[0]
    assert table.cells[("m", "status_report")][1].verdict == Verdict.NOT_COMPARABLE
    assert find_regressions(other, {"m": base}) == []


def test_runs_without_a_model_in_common_are_refused():
    with pytest.raises(ComparisonError, match="no model in common"):
        compare_runs([_run("a", {"phi4:14b": [1, 2]}), _run("b", {"qwq:32b": [1, 2]})])


def test_a_failed_model_is_not_judged():
    before = _run("a", {"m": _samples(37.0, 1)})
    after = _run("b", {"m": _samples(20.0, 1)}, status="failed")
    assert find_regressions(after, {"m": before}) == []


def test_the_trend_judges_each_machine_against_its_own_previous_run():
    def point(run_id, machine, mean):
        cell = _cell(_samples(mean, 1, seed=int(run_id[1:])))
        return TrendPoint(run_id=run_id, machine_id=machine, hostname=machine, started_at="",
                          ollama_version="", digest="", quantization="",
                          comparability_key="k", model_cell=cell,
                          task_cells={"status_report": cell})
    steps = judge_trend(DECODE, [point("r1", "a", 37), point("r2", "b", 20),
                                 point("r3", "a", 37.1), point("r4", "b", 10)])
    assert [s.comparison.verdict for s in steps] == [
        Verdict.BASELINE, Verdict.BASELINE, Verdict.WITHIN_NOISE, Verdict.REGRESSED]
    assert steps[3].previous_run_id == "r2"


def test_model_level_cells_are_compared_when_a_metric_has_no_task_cells():
    base = _run("a", {"m": [1.0, 1.0]})
    base.models["m"].cells[(ALL_TASKS, "j_per_token")] = _cell([2.0, 2.1, 1.9])
    other = _run("b", {"m": [1.0, 1.0]})
    other.models["m"].cells[(ALL_TASKS, "j_per_token")] = _cell([3.0, 3.1, 2.9])
    energy = [t for t in compare_runs([base, other]).tables if t.metric.key == "j_per_token"]
    assert energy[0].cells[("m", ALL_TASKS)][1].verdict == Verdict.REGRESSED


def test_holm_adjustment_of_a_family():
    assert holm_adjusted([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])


def test_one_chance_hit_among_many_cells_is_not_a_regression():
    # 12 tasks compared at once; one of them p ~ 0.01 by itself is what chance gives.
    base, cur = _run("a", {}), _run("b", {})
    for i in range(12):
        for run, values in ((base, [10.0, 10.2, 9.8]), (cur, [10.0, 10.2, 9.8])):
            snap = run.models.setdefault("m", ModelSnapshot(model="m", status="ok"))
            snap.cells[(f"t{i}", "decode_tps")] = _cell(values)
    cur.models["m"].cells[("t0", "decode_tps")] = _cell([9.5, 9.55, 9.45])
    alone = compare_cell(DECODE, base.models["m"].cells[("t0", "decode_tps")],
                         cur.models["m"].cells[("t0", "decode_tps")])
    assert alone.verdict == Verdict.REGRESSED and alone.p_value > 0.05 / 12
    assert find_regressions(cur, {"m": base}) == []
    column = [t for t in compare_runs([base, cur]).tables if t.metric.key == "decode_tps"][0]
    assert column.cells[("m", "t0")][1].verdict == Verdict.WITHIN_NOISE
