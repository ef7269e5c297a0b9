"""Reading HTTP replies within bounds: body size, line length, stream size and strict JSON."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import httpx

from ..core.runs.inert_text import printable, shortened
from .reply_decoding import (  # noqa: F401  (ReplyDeadline, ReplyEncodingRefused re-exported)
    ReplyDeadline, ReplyEncodingRefused, ReplyTooLarge, iter_decoded)

MIB = 1024 * 1024


class ReplyNotJson(ValueError):
    """A reply is not strict JSON: malformed, NaN/Infinity, non-finite, or nested too deep."""


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


def read_body(response: httpx.Response, *, max_bytes: int, what: str,
              deadline_at: Optional[float] = None) -> bytes:
    """Read a whole body of at most max_bytes (claimed, on the wire, decoded) by deadline_at."""
    _check_claimed_length(response, max_bytes, what)
    body = bytearray()
    for piece in iter_decoded(response, max_bytes=max_bytes, what=what,
                              deadline_at=deadline_at):
        body += piece
    return bytes(body)


def read_prefix(response: httpx.Response, *, max_bytes: int,
                deadline_at: Optional[float] = None) -> bytes:
    """
    Read the first max_bytes of an error reply, or what came by deadline_at.

    The status is known already: a body cut short (the deadline, the peer, a bound, an encoding
    not read) leaves the prefix read so far, never an error of its own.
    """
    body = bytearray()
    try:
        for piece in iter_decoded(response, max_bytes=16 * max_bytes, what="error reply"):
            body += piece[:max_bytes - len(body)]
            if len(body) >= max_bytes or (deadline_at is not None
                                          and time.monotonic() > deadline_at):
                break
    except (httpx.TransportError, ReplyTooLarge, ReplyEncodingRefused):
        pass
    return bytes(body)


def iter_bounded_lines(response: httpx.Response, *, max_line_bytes: int,
                       max_total_bytes: int, what: str,
                       on_bytes: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
    """
    Yield the lines of a streamed body, each at most max_line_bytes, in all max_total_bytes.

    Both bounds count decoded bytes (and the total also the bytes on the wire). on_bytes runs
    after every piece that arrives and every inflate step, also inside a line that never ends,
    so a deadline can be kept against a slow drip without a newline or a compressed flood.
    """
    buffer = bytearray()
    for piece in iter_decoded(response, max_bytes=max_total_bytes, what=what, noun="stream",
                              on_bytes=on_bytes):
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
