"""A stream the server ended without its final chunk: what it means and what is kept of it."""

from __future__ import annotations

from typing import Optional, Sequence

# Ollama closes a 200 stream without a `done` chunk and without an error when it aborts the
# prediction: the same token repeated more than 30 times (llm/server.go and
# llm/llama_server.go `Completion`, "token repeat limit reached", v0.12.6 and v0.32.15), or
# llama-server's error event for output that is not valid UTF-8, which v0.32.15 drops.
ENDED_EARLY = "ended_early"
ENDED_EARLY_TEXT = ("stream ended early: the server stopped the prediction "
                    "(repeat limit or invalid UTF-8)")


def client_decode_rate(token_chunk_times_s: Sequence[float]) -> Optional[float]:
    """Tokens per second between the first and the last text chunk, on the client's clock."""
    if len(token_chunk_times_s) < 2:
        return None
    span_s = token_chunk_times_s[-1] - token_chunk_times_s[0]
    if span_s <= 0:
        return None
    return (len(token_chunk_times_s) - 1) / span_s
