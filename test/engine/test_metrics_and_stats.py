"""Request metrics from what a client saw, and statistics over repetitions."""

import math

import pytest

from shadowhound_llm_bench.core.request_metrics import metrics_from_capture
from shadowhound_llm_bench.core.stats import percentile, summarize
from shadowhound_llm_bench.core.stream_capture import StreamCapture


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
