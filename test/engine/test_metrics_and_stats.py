"""Request metrics from what a client saw, and statistics over repetitions."""

import csv
import io
import math

import pytest

from shadowhound_llm_bench.core.ollama.request_metrics import (
    RequestMetrics, cut_short, metrics_from_capture)
from shadowhound_llm_bench.core.runs.run_records import record, summarize_run
from shadowhound_llm_bench.core.ollama.stream_end import ENDED_EARLY, ENDED_EARLY_TEXT
from shadowhound_llm_bench.reports.csv_report import render_csv
from shadowhound_llm_bench.reports.markdown_report import render_markdown
from shadowhound_llm_bench.core.runs.stats import percentile, summarize
from shadowhound_llm_bench.core.ollama.stream_capture import StreamCapture


def test_metrics_use_client_ttft_and_ollama_counters():
    capture = StreamCapture(started_s=100.0)
    capture.token_chunk_times_s = [100.25, 100.30, 100.36, 100.40]
    capture.ended_s = 100.5
    capture.final = {"done": True, "done_reason": "stop", "load_duration": 2_000_000_000,
                     "prompt_eval_count": 50, "prompt_eval_duration": 100_000_000,
                     "eval_count": 40, "eval_duration": 800_000_000,
                     "total_duration": 3_000_000_000}
    m = metrics_from_capture(capture)
    assert m.ttft_ms == pytest.approx(250.0)
    assert m.e2e_latency_s == pytest.approx(0.5)
    assert m.load_s == pytest.approx(2.0)
    assert m.prompt_tokens == 50 and m.prompt_tokens_per_s == pytest.approx(500.0)
    assert m.decode_tokens_per_s == pytest.approx(50.0)  # 40 / 0.8 s
    assert m.inter_token_ms_mean == pytest.approx(50.0)
    assert m.inter_token_ms_max == pytest.approx(60.0)
    assert m.token_chunks == 4
    assert not m.truncated


def test_length_done_reason_is_truncated_and_missing_counters_are_none():
    capture = StreamCapture(started_s=0.0, ended_s=1.0, final={"done_reason": "length"})
    m = metrics_from_capture(capture)
    assert m.truncated and m.done_reason == "length"
    assert m.ttft_ms is None and m.decode_tokens_per_s is None and m.inter_token_ms_mean is None


def test_summarize_gives_sample_stddev_and_ignores_missing_values():
    s = summarize([10.0, 12.0, None, float("nan"), 14.0])
    assert (s.n, s.mean, s.median, s.min, s.max) == (3, 12.0, 12.0, 10.0, 14.0)
    assert s.stddev == pytest.approx(2.0)
    assert summarize([5.0]).stddev == 0.0
    assert summarize([]) is None


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile([], 90) is None
    with pytest.raises(ValueError):
        percentile([1], 101)
    assert not math.isnan(percentile([1.0, 2.0], 90))


def test_a_stream_the_server_ended_early_keeps_its_tokens_and_client_timing():
    capture = StreamCapture(started_s=10.0, ended_s=12.1, ended_early=True)
    capture.token_chunk_times_s = [10.5 + 0.05 * i for i in range(33)]  # 33 chunks over 1.6 s
    capture.chunks = 33
    m = metrics_from_capture(capture)
    assert m.ended_early and m.done_reason == ENDED_EARLY and not m.truncated
    assert m.eval_count == m.token_chunks == 33
    assert m.decode_tokens_per_s == pytest.approx(32 / 1.6)
    assert m.decode_source == "client" and m.ttft_ms == pytest.approx(500.0)
    assert m.load_s is None and m.prompt_tokens is None
    assert cut_short(m)
    assert RequestMetrics.from_dict(m.to_dict()) == m


def test_an_early_end_is_counted_per_task_and_model_and_shown_in_the_reports():
    early = metrics_from_capture(StreamCapture(
        started_s=0.0, ended_s=1.0, ended_early=True, token_chunk_times_s=[0.1, 0.2, 0.3]))
    whole = metrics_from_capture(StreamCapture(
        started_s=0.0, ended_s=1.0, token_chunk_times_s=[0.1, 0.2],
        final={"done": True, "done_reason": "stop", "eval_count": 2,
               "eval_duration": 100_000_000}))
    records = [record("run_start", session=1, run_id="r", models=["m"]),
               record("model_start", session=1, model="m")]
    for rep, metrics in ((1, early), (2, whole)):
        records.append(record("test", session=1, model="m", task="t", repetition=rep,
                              warmup=False, status="ok", metrics=metrics.to_dict()))
    records.append(record("model_end", session=1, model="m", status="ok"))
    summary = summarize_run(records)
    (model,) = summary.models
    assert model.status == "ok" and model.tests_ok == 2 and model.ended_early == 1
    assert model.tasks[0].ended_early == 1
    assert summary.to_dict()["models"][0]["ended_early"] == 1
    assert ENDED_EARLY_TEXT in render_markdown(summary)
    (row,) = list(csv.DictReader(io.StringIO(render_csv(summary))))
    assert row["ended_early"] == "1" and row["truncated"] == "0"
