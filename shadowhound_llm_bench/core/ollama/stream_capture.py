"""What a client saw of one streamed Ollama request: text, chunk arrival times, final chunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class StreamCapture:
    """Raw client-side observations of one streamed request; times are perf_counter seconds."""

    started_s: float
    text: str = ""
    thinking: str = ""
    # Arrival time of every chunk that carried generated text (response or thinking).
    token_chunk_times_s: List[float] = field(default_factory=list)
    first_response_chunk_s: Optional[float] = None
    ended_s: Optional[float] = None
    final: Dict[str, Any] = field(default_factory=dict)
    chunks: int = 0
    # The server closed the 200 stream without its final chunk and without an error line
    # (core/ollama/stream_end.py): the text and chunk times are kept, Ollama's counters never came.
    ended_early: bool = False

    @property
    def first_token_s(self) -> Optional[float]:
        """Arrival of the first chunk with any generated text (thinking counts: it is output)."""
        return self.token_chunk_times_s[0] if self.token_chunk_times_s else None

    @property
    def done_reason(self) -> str:
        return str(self.final.get("done_reason") or "")
