"""Reading HTTP replies within bounds: body size, line length, stream size and strict JSON."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import httpx

from ..core.inert_text import printable, shortened

MIB = 1024 * 1024


class ReplyTooLarge(ValueError):
    """A reply (its body, one stream line, the whole stream or its text) passed a bound."""


class ReplyNotJson(ValueError):
    """A reply is not strict JSON: malformed, NaN/Infinity, non-finite, or nested too deep."""


class ReplyDeadline(TimeoutError):
    """The deadline of the whole reply passed while it was still arriving (a slow drip)."""


@dataclass(frozen=True)
class ReplyLimits:
    """How much of a server's reply the client reads before it gives up with a clear error."""

    # /api/show of a large model (model_info, template, license) is tens of KiB; tags and ps
    # of hundreds of models are a few hundred KiB.
    max_body_bytes: int = 4 * MIB
    max_error_body_bytes: int = 64 * 1024
    # One NDJSON line of Ollama's streams is ~100 bytes; a final chunk with `context` a few MiB.
    max_line_bytes: int = 4 * MIB
    # num_predict at its maximum (131072 tokens) is ~13 MiB of stream lines.
    max_stream_bytes: int = 48 * MIB
    # Generated text kept per request (131072 tokens are ~0.5 MiB of text).
    max_text_chars: int = 2 * MIB
    max_error_chars: int = 300


def _check_claimed_length(response: httpx.Response, max_bytes: int, what: str) -> None:
    claimed = response.headers.get("content-length")
    if claimed is None:
        return
    try:
        length = int(claimed)
    except ValueError:
        raise ReplyTooLarge(f"{what}: Content-Length is not a number") from None
    if length > max_bytes:
        raise ReplyTooLarge(f"{what}: the server announces {length} bytes, more than the "
                            f"{max_bytes} bytes read at most")


def _check_deadline(deadline_at: Optional[float], what: str) -> None:
    if deadline_at is not None and time.monotonic() > deadline_at:
        raise ReplyDeadline(f"{what}: the reply was still arriving at its deadline")


def read_body(response: httpx.Response, *, max_bytes: int, what: str,
              deadline_at: Optional[float] = None) -> bytes:
    """Read a whole body of at most max_bytes (claimed or streamed) before deadline_at."""
    _check_claimed_length(response, max_bytes, what)
    body = bytearray()
    for piece in response.iter_bytes():
        body += piece
        if len(body) > max_bytes:
            raise ReplyTooLarge(f"{what}: reply larger than {max_bytes} bytes")
        _check_deadline(deadline_at, what)
    return bytes(body)


def read_prefix(response: httpx.Response, *, max_bytes: int,
                deadline_at: Optional[float] = None) -> bytes:
    """Read the first max_bytes of a body, or what came by deadline_at (an error reply)."""
    body = bytearray()
    for piece in response.iter_bytes():
        body += piece[:max_bytes - len(body)]
        if len(body) >= max_bytes or (deadline_at is not None
                                      and time.monotonic() > deadline_at):
            break
    return bytes(body)


def iter_bounded_lines(response: httpx.Response, *, max_line_bytes: int,
                       max_total_bytes: int, what: str,
                       on_bytes: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
    """
    Yield the lines of a streamed body, each at most max_line_bytes, in all max_total_bytes.

    on_bytes runs after every piece that arrives, also inside a line that never ends, so a
    deadline can be kept against a slow drip without a newline.
    """
    buffer = bytearray()
    total = 0
    for piece in response.iter_bytes():
        total += len(piece)
        if total > max_total_bytes:
            raise ReplyTooLarge(f"{what}: stream longer than {max_total_bytes} bytes")
        buffer += piece
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end - start > max_line_bytes:
                raise ReplyTooLarge(f"{what}: stream line longer than {max_line_bytes} bytes")
            yield bytes(buffer[start:end])
            start = end + 1
        del buffer[:start]
        if len(buffer) > max_line_bytes:
            raise ReplyTooLarge(f"{what}: stream line longer than {max_line_bytes} bytes")
        if on_bytes is not None:
            on_bytes()
    if buffer.strip():
        yield bytes(buffer)


def _refuse_constant(name: str) -> Any:
    raise ReplyNotJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ReplyNotJson("a number is out of range")
    return value


def parse_json(data: bytes, *, what: str) -> Any:
    """Parse strict JSON (RFC 8259): no NaN or Infinity, finite numbers, bounded nesting."""
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ReplyNotJson as exc:
        raise ReplyNotJson(f"{what}: {exc}") from None
    except RecursionError:
        raise ReplyNotJson(f"{what}: JSON nested too deeply") from None
    except ValueError:  # malformed, not UTF-8, or an integer of more than 4300 digits
        raise ReplyNotJson(f"{what}: reply is not JSON") from None


def error_excerpt(text: object, limit_chars: int) -> str:
    """Return a server's error text fit for our messages: one line, bounded, no escapes."""
    return shortened(printable(text).strip(), limit_chars)
