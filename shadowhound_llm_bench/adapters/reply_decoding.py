"""
A reply's Content-Encoding undone step by step, bounded on the wire and once decoded.

Ollama never compresses (its gin router has no gzip middleware: server/routes.go,
GenerateRoutes) and the client asks for `identity`; a proxy in between may still gzip. So the
client reads the raw bytes itself (httpx would inflate each piece whole, a few bytes becoming
gigabytes) and inflates at most one gzip layer in steps of DECODE_STEP_BYTES, counting wire and
decoded bytes and their ratio, checking the deadline between steps. Anything else (stacked,
brotli, zstd, deflate, unknown) is refused with a one-line error.
"""

from __future__ import annotations

import time
import zlib
from typing import Callable, Iterator, List, Optional

import httpx

from ..core.runs.inert_text import quoted

# What the client asks for: Ollama answers plain bytes.
ACCEPT_ENCODING = "identity"
GZIP_NAMES = ("gzip", "x-gzip")
# The most bytes one inflate step produces: the bound on memory between two checks.
DECODE_STEP_BYTES = 64 * 1024
# JSON compresses 5-20x; a bomb 1000x and more. The ratio counts once this much is decoded.
MAX_EXPANSION_RATIO = 200
RATIO_FLOOR_BYTES = 256 * 1024


class ReplyTooLarge(ValueError):
    """A reply (its body, one stream line, the whole stream or its text) passed a bound."""


class ReplyDeadline(TimeoutError):
    """The deadline of the whole reply passed while it was still arriving (a slow drip)."""


class ReplyEncodingRefused(ValueError):
    """A reply in an encoding the client does not read: stacked, unknown, or corrupt."""


def check_deadline(deadline_at: Optional[float], what: str) -> None:
    """Raise ReplyDeadline once deadline_at (time.monotonic) has passed."""
    if deadline_at is not None and time.monotonic() > deadline_at:
        raise ReplyDeadline(f"{what}: the reply was still arriving at its deadline")


def content_codings(response: httpx.Response) -> List[str]:
    """Return the codings of Content-Encoding in the order applied, identity left out."""
    values = response.headers.get_list("content-encoding", split_commas=True)
    return [value.strip().lower() for value in values
            if value.strip() and value.strip().lower() != "identity"]


def refuse_unread_codings(codings: List[str], what: str) -> None:
    """Refuse what is not plain or one gzip layer, naming it in one bounded line."""
    if len(codings) > 1:
        raise ReplyEncodingRefused(
            f"{what}: reply encoded {quoted(', '.join(codings), 60)} (stacked encodings); "
            "only one gzip layer is read")
    if codings and codings[0] not in GZIP_NAMES:
        raise ReplyEncodingRefused(
            f"{what}: reply encoded {quoted(codings[0], 40)}, which Ollama never sends; "
            "only identity and gzip are read")


class _Counts:
    def __init__(self, *, max_wire: int, max_decoded: int, what: str, noun: str) -> None:
        self.wire = 0
        self.decoded = 0
        self.max_wire = max_wire
        self.max_decoded = max_decoded
        self.what = what
        self.noun = noun
        self.bigger = "longer" if noun == "stream" else "larger"

    def add_wire(self, size: int) -> None:
        self.wire += size
        if self.wire > self.max_wire:
            raise ReplyTooLarge(
                f"{self.what}: {self.noun} {self.bigger} than {self.max_wire} bytes")

    def add_decoded(self, size: int) -> None:
        self.decoded += size
        if self.decoded > self.max_decoded:
            raise ReplyTooLarge(
                f"{self.what}: {self.noun} {self.bigger} than {self.max_decoded} bytes "
                f"once decoded ({self.wire} bytes on the wire)")
        if self.decoded > RATIO_FLOOR_BYTES and \
                self.decoded > MAX_EXPANSION_RATIO * max(1, self.wire):
            raise ReplyTooLarge(f"{self.what}: {self.noun} expands more than "
                                f"{MAX_EXPANSION_RATIO}x ({self.wire} bytes on the wire)")


def _inflate(inflater: "zlib._Decompress", data: bytes, what: str) -> Iterator[bytes]:
    """Inflate data in steps of at most DECODE_STEP_BYTES."""
    try:
        while not inflater.eof:
            out = inflater.decompress(data, DECODE_STEP_BYTES)
            data = inflater.unconsumed_tail
            if not out and not data:
                break  # all input taken and no output pending: wait for the next piece
            if out:
                yield out
        if inflater.unused_data:
            raise ReplyEncodingRefused(f"{what}: more than one gzip member (stacked encodings); "
                                       "only one gzip layer is read")
    except zlib.error:
        raise ReplyEncodingRefused(f"{what}: reply is not valid gzip") from None


def iter_decoded(response: httpx.Response, *, max_bytes: int, what: str,
                 deadline_at: Optional[float] = None, noun: str = "reply",
                 on_bytes: Optional[Callable[[], None]] = None) -> Iterator[bytes]:
    """
    Yield a body's decoded bytes, at most max_bytes on the wire and max_bytes decoded.

    deadline_at (time.monotonic) and on_bytes are checked after every raw piece and every
    inflate step, so neither a drip nor a bomb outlasts the request's deadline.
    """
    codings = content_codings(response)
    refuse_unread_codings(codings, what)
    counts = _Counts(max_wire=max_bytes, max_decoded=max_bytes, what=what, noun=noun)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if codings else None
    for raw in response.iter_raw():
        counts.add_wire(len(raw))
        if inflater is None:
            counts.add_decoded(len(raw))
            yield raw
        else:
            for out in _inflate(inflater, raw, what):
                counts.add_decoded(len(out))
                yield out
                check_deadline(deadline_at, what)
                if on_bytes is not None:
                    on_bytes()
        check_deadline(deadline_at, what)
        if on_bytes is not None:
            on_bytes()
    if inflater is not None and counts.wire and not inflater.eof:
        raise ReplyEncodingRefused(f"{what}: the gzip reply was cut short")
