"""Metrics of one measured request, computed from what the client saw and Ollama reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from ..runs.stats import percentile, summarize
from .stream_capture import StreamCapture
from .stream_end import ENDED_EARLY, client_decode_rate

NS_PER_S = 1e9

# Metric names aggregated over repetitions, in report order.
AGGREGATED_METRICS = (
    "decode_tokens_per_s",
    "ttft_ms",
    "e2e_latency_s",
    "prompt_tokens_per_s",
    "inter_token_ms_mean",
    "inter_token_ms_p90",
    "load_s",
    "eval_count",
    "prompt_tokens",
)


@dataclass(frozen=True)
class RequestMetrics:
    """One request: client-side timing plus Ollama's own counters (durations converted to s)."""

    ttft_ms: Optional[float]  # client: request sent -> first chunk carrying generated text
    e2e_latency_s: float  # client: request sent -> final chunk
    load_s: Optional[float]  # Ollama load_duration
    prompt_tokens: Optional[int]
    prompt_tokens_per_s: Optional[float]
    eval_count: Optional[int]
    decode_tokens_per_s: Optional[float]  # eval_count / eval_duration
    inter_token_ms_mean: Optional[float]
    inter_token_ms_median: Optional[float]
    inter_token_ms_p90: Optional[float]
    inter_token_ms_p99: Optional[float]
    inter_token_ms_max: Optional[float]
    token_chunks: int
    done_reason: str
    truncated: bool  # done_reason "length": the num_predict cap cut the answer
    total_duration_s: Optional[float] = None
    # The server ended the stream without its final chunk (repeat limit, invalid UTF-8):
    # eval_count is the chunks seen and the decode rate comes from the client's clock.
    ended_early: bool = False
    decode_source: str = "ollama"  # ollama: eval_count / eval_duration; client: chunk times

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RequestMetrics":
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        known["token_chunks"] = int(known.get("token_chunks") or 0)
        known["done_reason"] = str(known.get("done_reason") or "")
        known["truncated"] = bool(known.get("truncated"))
        known["ended_early"] = bool(known.get("ended_early"))
        known["decode_source"] = str(known.get("decode_source") or "ollama")
        known["e2e_latency_s"] = float(known.get("e2e_latency_s") or 0.0)
        return cls(**known)


def _rate(count: Any, duration_ns: Any) -> Optional[float]:
    if not isinstance(count, (int, float)) or not isinstance(duration_ns, (int, float)):
        return None
    if count <= 0 or duration_ns <= 0:
        return None
    return float(count) / float(duration_ns) * NS_PER_S


def _seconds(duration_ns: Any) -> Optional[float]:
    if not isinstance(duration_ns, (int, float)):
        return None
    return float(duration_ns) / NS_PER_S


def _int_or_none(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) else None


def metrics_from_capture(capture: StreamCapture) -> RequestMetrics:
    """Compute a request's metrics; TTFT and inter-token gaps come from chunk arrival times."""
    final = capture.final
    ended = capture.ended_s if capture.ended_s is not None else capture.started_s
    first = capture.first_token_s
    times = capture.token_chunk_times_s
    gaps_ms = [(b - a) * 1000.0 for a, b in zip(times, times[1:])]
    gap_stats = summarize(gaps_ms)
    done_reason = capture.done_reason
    if capture.ended_early:
        return _ended_early_metrics(capture, gaps_ms)
    return RequestMetrics(
        ttft_ms=(first - capture.started_s) * 1000.0 if first is not None else None,
        e2e_latency_s=ended - capture.started_s,
        load_s=_seconds(final.get("load_duration")),
        prompt_tokens=_int_or_none(final.get("prompt_eval_count")),
        prompt_tokens_per_s=_rate(final.get("prompt_eval_count"),
                                  final.get("prompt_eval_duration")),
        eval_count=_int_or_none(final.get("eval_count")),
        decode_tokens_per_s=_rate(final.get("eval_count"), final.get("eval_duration")),
        inter_token_ms_mean=gap_stats.mean if gap_stats else None,
        inter_token_ms_median=gap_stats.median if gap_stats else None,
        inter_token_ms_p90=percentile(gaps_ms, 90.0),
        inter_token_ms_p99=percentile(gaps_ms, 99.0),
        inter_token_ms_max=gap_stats.max if gap_stats else None,
        token_chunks=len(times),
        done_reason=done_reason,
        truncated=done_reason == "length",
        total_duration_s=_seconds(final.get("total_duration")),
    )


def cut_short(metrics: RequestMetrics) -> bool:
    """Tell whether the answer was cut: the num_predict cap, or the server ended it early."""
    return metrics.truncated or metrics.ended_early


def _ended_early_metrics(capture: StreamCapture, gaps_ms: List[float]) -> RequestMetrics:
    """Count the chunks of a stream without its final chunk; time its decode on the client."""
    times = capture.token_chunk_times_s
    gap_stats = summarize(gaps_ms)
    ended = capture.ended_s if capture.ended_s is not None else capture.started_s
    first = capture.first_token_s
    return RequestMetrics(
        ttft_ms=(first - capture.started_s) * 1000.0 if first is not None else None,
        e2e_latency_s=ended - capture.started_s,
        load_s=None, prompt_tokens=None, prompt_tokens_per_s=None,
        eval_count=len(times),
        decode_tokens_per_s=client_decode_rate(times),
        inter_token_ms_mean=gap_stats.mean if gap_stats else None,
        inter_token_ms_median=gap_stats.median if gap_stats else None,
        inter_token_ms_p90=percentile(gaps_ms, 90.0),
        inter_token_ms_p99=percentile(gaps_ms, 99.0),
        inter_token_ms_max=gap_stats.max if gap_stats else None,
        token_chunks=len(times), done_reason=ENDED_EARLY, truncated=False,
        ended_early=True, decode_source="client")
