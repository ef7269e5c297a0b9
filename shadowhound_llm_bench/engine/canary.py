"""Canary request: a small model and a fixed prompt, timed like any test."""

from __future__ import annotations

from ..adapters.ollama_client import OllamaClient, OllamaError
from ..core.platform.canary import CanaryResult
from ..core.ollama.request_metrics import metrics_from_capture
from ..core.settings.run_options import RunOptions


def run_canary(client: OllamaClient, *, options: RunOptions) -> CanaryResult:
    """Decode speed of the canary model; a failure is a result with its error, never a raise."""
    model = options.canary_model
    try:
        capture = client.generate_stream(model, options.canary_prompt,
                                         deadline_s=options.request_deadline_s,
                                         options=options.ollama_options(),
                                         keep_alive=options.keep_alive)
    except OllamaError as exc:
        return CanaryResult(model=model, decode_tokens_per_s=None, error=f"{exc.kind}: {exc}")
    metrics = metrics_from_capture(capture)
    return CanaryResult(model=model, decode_tokens_per_s=metrics.decode_tokens_per_s)
