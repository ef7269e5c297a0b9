"""Ollama HTTP API over httpx: every call has a deadline and every failure a specific exception."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import httpx

from ..core.ollama.ollama_reply_shapes import (
    ReplyShapeError, check_final_chunk, check_model_list, check_show_reply, reply_object,
    version_text)
from ..core.ollama.stream_capture import StreamCapture
from ..core.ollama.stream_end import ENDED_EARLY_TEXT
from .bounded_http import (
    ReplyDeadline, ReplyEncodingRefused, ReplyLimits, ReplyNotJson, ReplyTooLarge,
    error_excerpt, iter_bounded_lines, parse_json, read_body, read_prefix)
from .http_interrupt import (
    CANCELED, DEADLINE, STALLED, InFlightRegistry, InFlightRequest, interruptible_transport)
from .reply_decoding import ACCEPT_ENCODING

KeepAlive = Union[int, float, str]
PullProgress = Callable[[Dict[str, Any]], None]

# Deadlines sized to what each call does: metadata answers in milliseconds on a healthy server,
# an unload reply comes at once (Ollama frees the memory afterwards); a few seconds mean a hung
# server, not a slow one. Loads and streams get their deadlines from the caller.
VERSION_DEADLINE_S = 5.0
PS_DEADLINE_S = 5.0
SHOW_DEADLINE_S = 10.0
TAGS_DEADLINE_S = 10.0
UNLOAD_DEADLINE_S = 10.0


class OllamaError(Exception):
    """Any failure talking to Ollama; `capture` holds what a stream delivered before it failed."""

    kind = "error"

    def __init__(self, message: str, *, capture: Optional[StreamCapture] = None) -> None:
        super().__init__(message)
        self.capture = capture


class OllamaUnavailable(OllamaError):
    """Connection refused, reset or closed mid-reply: the server is not there (or died)."""

    kind = "unavailable"


class OllamaTimeout(OllamaError):
    """A deadline passed (connect, read stall, or the whole request)."""

    kind = "timeout"


class OllamaStalled(OllamaTimeout):
    """A stream delivered no chunk for longer than its stall limit."""

    kind = "stalled"


class OllamaInterrupted(OllamaError):
    """The request was cut from outside: canceled by request or preempted for the robot."""

    def __init__(self, message: str, *, cause: str,
                 capture: Optional[StreamCapture] = None) -> None:
        super().__init__(message, capture=capture)
        self.cause = cause
        self.kind = cause  # canceled | preempted


class OllamaHTTPError(OllamaError):
    """The server answered with an HTTP error status."""

    kind = "http_error"

    def __init__(self, status: int, message: str, *,
                 capture: Optional[StreamCapture] = None) -> None:
        super().__init__(f"HTTP {status}: {message}", capture=capture)
        self.status = status
        self.message = message


class ModelNotFound(OllamaHTTPError):
    """HTTP 404: the model is not present on the server."""


class OllamaStreamError(OllamaError):
    """An error line inside a stream (HTTP 200), a malformed line, or a stream without `done`."""

    kind = "stream_error"


class OllamaReplyTooLarge(OllamaStreamError):
    """A reply, a stream line, a stream or its text passed the client's ReplyLimits."""

    kind = "reply_too_large"


class OllamaBadReply(OllamaStreamError):
    """A reply that is not strict JSON or carries a field of the wrong type or range."""

    kind = "bad_reply"


class OllamaEmptyResponse(OllamaError):
    """The request finished but produced no text at all."""

    kind = "empty_output"


def _error_message(raw: bytes, reason: str, limits: ReplyLimits) -> str:
    try:
        body = parse_json(raw, what="error reply")
    except ReplyNotJson:
        text = raw.decode("utf-8", errors="replace")
        return error_excerpt(text, limits.max_error_chars) or reason
    if isinstance(body, dict) and "error" in body:
        return error_excerpt(body["error"], limits.max_error_chars)
    return error_excerpt(json.dumps(body), limits.max_error_chars)


def _raise_for_status(response: httpx.Response, *, limits: ReplyLimits,
                      capture: Optional[StreamCapture] = None,
                      deadline_at: Optional[float] = None) -> None:
    if response.status_code < 400:
        return
    raw = read_prefix(response, max_bytes=limits.max_error_body_bytes, deadline_at=deadline_at)
    message = _error_message(raw, response.reason_phrase, limits)
    if response.status_code == 404:
        raise ModelNotFound(404, message, capture=capture)
    raise OllamaHTTPError(response.status_code, message, capture=capture)


class OllamaClient:
    """A synchronous Ollama client; use as a context manager or call close()."""

    def __init__(self, *, base_url: str, connect_timeout_s: float = 3.0,
                 request_timeout_s: float = 30.0, limits: ReplyLimits = ReplyLimits()) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Ollama base URL must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.limits = limits
        self._in_flight = InFlightRegistry()
        self._http = httpx.Client(base_url=self.base_url, timeout=self._timeout(request_timeout_s),
                                  headers={"Accept-Encoding": ACCEPT_ENCODING},
                                  transport=interruptible_transport(self._in_flight))

    # ------------------------------------------------------------------ plumbing
    def _timeout(self, read_s: float) -> httpx.Timeout:
        read_s = max(0.05, read_s)
        return httpx.Timeout(read_s, connect=min(self.connect_timeout_s, read_s))

    def interrupt(self, *, cause: str, reason: str, kinds: Optional[Sequence[str]] = None,
                  model: str = "") -> int:
        """
        Cut requests in flight from another thread; returns how many were cut.

        cause is "canceled" or "preempted"; kinds picks load, stream, unload, call, pull (all
        when None). The calls raise OllamaInterrupted with the reason at once.
        """
        return len(self._in_flight.interrupt(cause=cause, reason=reason, kinds=kinds,
                                             model=model))

    def in_flight(self) -> List[InFlightRequest]:
        """Return the requests being made now (kind, model, since when)."""
        return self._in_flight.in_flight()

    def abandoned_loads(self, since_s: float = 0.0) -> List[InFlightRequest]:
        """Return the loads and streams this client cut before their answer (Ollama may go on)."""
        return self._in_flight.abandoned(since_s)

    @staticmethod
    def _interrupted(request: InFlightRequest,
                     capture: Optional[StreamCapture] = None) -> OllamaError:
        """Build the exception for a request cut by the watchdog or by interrupt()."""
        if request.cause == STALLED:
            return OllamaStalled(request.reason, capture=capture)
        if request.cause == DEADLINE:
            return OllamaTimeout(request.reason, capture=capture)
        return OllamaInterrupted(f"{request.label}: {request.reason}",
                                 cause=request.cause or CANCELED, capture=capture)

    def _request(self, method: str, path: str, *, body: Optional[Mapping[str, Any]] = None,
                 deadline_s: Optional[float] = None, kind: str = "call",
                 model: str = "") -> Any:
        total_s = deadline_s if deadline_s is not None else self.request_timeout_s
        request = self._in_flight.begin(kind=kind, label=f"{method} {path}", model=model,
                                        deadline_s=total_s)
        try:
            return self._request_in(method, path, body=body, total_s=total_s)
        except OllamaError as exc:
            if request.cause is not None and not isinstance(exc, OllamaHTTPError):
                raise self._interrupted(request) from exc
            raise
        finally:
            self._in_flight.end(request)

    def _request_in(self, method: str, path: str, *, body: Optional[Mapping[str, Any]],
                    total_s: float) -> Any:
        timeout = self._timeout(total_s)
        what = f"{method} {path}"
        try:
            # Streamed so that the body is read within the size bound and the whole deadline.
            with self._http.stream(method, path, json=body, timeout=timeout) as response:
                deadline_at = time.monotonic() + total_s
                _raise_for_status(response, limits=self.limits, deadline_at=deadline_at)
                raw = read_body(response, max_bytes=self.limits.max_body_bytes, what=what,
                                deadline_at=deadline_at)
        except httpx.TimeoutException as exc:
            raise OllamaTimeout(f"{method} {path}: timed out ({type(exc).__name__})") from exc
        except ReplyDeadline as exc:
            raise OllamaTimeout(str(exc)) from None
        except ReplyTooLarge as exc:
            raise OllamaReplyTooLarge(str(exc)) from None
        except ReplyEncodingRefused as exc:
            raise OllamaBadReply(str(exc)) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:
            raise OllamaUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            return parse_json(raw, what=what)
        except ReplyNotJson as exc:
            raise OllamaBadReply(str(exc)) from None

    def _stream_lines(self, path: str, body: Mapping[str, Any], *, deadline_s: float,
                      capture: Optional[StreamCapture] = None, kind: str = "stream",
                      stall_s: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        """Yield parsed NDJSON lines; a stall longer than the time left or the deadline raises."""
        request = self._in_flight.begin(kind=kind, label=f"POST {path}",
                                        model=str(body.get("model") or ""),
                                        deadline_s=deadline_s)
        try:
            for chunk in self._stream_lines_in(path, body, deadline_s=deadline_s,
                                               capture=capture, request=request,
                                               stall_s=stall_s):
                yield chunk
            if request.cause is not None:  # it ended because it was cut, not because it was done
                raise self._interrupted(request, capture)
        except OllamaError as exc:
            if request.cause is not None and not isinstance(exc, OllamaHTTPError):
                raise self._interrupted(request, capture) from exc
            raise
        finally:
            self._in_flight.end(request)

    def _stream_lines_in(self, path: str, body: Mapping[str, Any], *, deadline_s: float,
                         capture: Optional[StreamCapture], request: InFlightRequest,
                         stall_s: Optional[float]) -> Iterator[Dict[str, Any]]:
        started = time.perf_counter()
        end = started + deadline_s
        read_s = min(self.request_timeout_s, deadline_s)
        limits = self.limits

        def keep_deadline() -> None:
            request.progress()  # bytes arrived: the stall timer starts again
            if time.perf_counter() > end:
                raise OllamaTimeout(
                    f"POST {path}: stream exceeded its {deadline_s:.1f} s deadline",
                    capture=capture)

        try:
            with self._http.stream("POST", path, json=body,
                                   timeout=self._timeout(read_s)) as response:
                left_s = max(0.0, end - time.perf_counter())
                _raise_for_status(response, limits=limits, capture=capture,
                                  deadline_at=time.monotonic() + left_s)
                # The first chunk may wait for a load; the stall limit counts from then on.
                request.stall_s = stall_s
                request.progress()
                for line in iter_bounded_lines(
                        response, max_line_bytes=limits.max_line_bytes,
                        max_total_bytes=limits.max_stream_bytes, what=f"POST {path}",
                        on_bytes=keep_deadline):
                    keep_deadline()
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        chunk = parse_json(line, what=f"POST {path}: stream line")
                    except ReplyNotJson as exc:
                        raise OllamaBadReply(
                            f"{exc} ({error_excerpt(line[:120].decode('utf-8', 'replace'), 120)})",
                            capture=capture) from None
                    if not isinstance(chunk, dict):
                        raise OllamaStreamError(f"POST {path}: stream line is not an object",
                                                capture=capture)
                    if "error" in chunk:
                        reason = error_excerpt(chunk["error"], limits.max_error_chars)
                        raise OllamaStreamError(f"POST {path}: {reason}", capture=capture)
                    yield chunk
        except ReplyTooLarge as exc:
            raise OllamaReplyTooLarge(str(exc), capture=capture) from None
        except ReplyEncodingRefused as exc:
            raise OllamaBadReply(str(exc), capture=capture) from None
        except httpx.TimeoutException as exc:
            raise OllamaTimeout(f"POST {path}: stream stalled ({type(exc).__name__})",
                                capture=capture) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:
            raise OllamaUnavailable(f"POST {path}: {type(exc).__name__}: {exc}",
                                    capture=capture) from exc

    # ------------------------------------------------------------------ metadata
    def version(self, *, deadline_s: float = VERSION_DEADLINE_S) -> str:
        """Return the server's version string (GET /api/version)."""
        return self._shaped(lambda: version_text(
            self._request("GET", "/api/version", deadline_s=deadline_s)))

    def tags(self, *, deadline_s: float = TAGS_DEADLINE_S) -> List[Dict[str, Any]]:
        """Models present on the server (GET /api/tags), each with name, size, digest, details."""
        reply = self._request("GET", "/api/tags", deadline_s=deadline_s)
        return self._shaped(lambda: check_model_list(reply, "/api/tags"))

    def show(self, model: str, *, deadline_s: float = SHOW_DEADLINE_S) -> Dict[str, Any]:
        """Model details, parameters and model_info (POST /api/show); ModelNotFound when absent."""
        reply = self._request("POST", "/api/show", body={"model": model},
                              deadline_s=deadline_s, model=model)
        return dict(self._shaped(lambda: check_show_reply(reply)))

    def ps(self, *, deadline_s: float = PS_DEADLINE_S) -> List[Dict[str, Any]]:
        """Models loaded now (GET /api/ps), each with size and size_vram."""
        reply = self._request("GET", "/api/ps", deadline_s=deadline_s)
        return self._shaped(lambda: check_model_list(reply, "/api/ps"))

    @staticmethod
    def _shaped(check: Callable[[], Any]) -> Any:
        try:
            return check()
        except ReplyShapeError as exc:
            raise OllamaBadReply(str(exc)) from None

    def wait_until_ready(self, *, deadline_s: float, poll_s: float = 0.2) -> str:
        """Poll /api/version until the server answers; returns the version or raises."""
        end = time.monotonic() + deadline_s
        last: Optional[Exception] = None
        while True:
            try:
                left_s = end - time.monotonic()
                return self.version(deadline_s=max(0.05, min(VERSION_DEADLINE_S, left_s)))
            except (OllamaUnavailable, OllamaTimeout, OllamaHTTPError) as exc:
                last = exc
            if time.monotonic() + poll_s > end:
                raise OllamaTimeout(
                    f"Ollama at {self.base_url} not ready within {deadline_s:.1f} s: {last}")
            time.sleep(poll_s)

    # ------------------------------------------------------------------ model lifecycle
    def pull(self, model: str, *, on_progress: Optional[PullProgress] = None,
             deadline_s: float) -> None:
        """Download a model, reporting each progress line; raises on an error line or deadline."""
        success = False
        for chunk in self._stream_lines("/api/pull", {"model": model, "stream": True},
                                        deadline_s=deadline_s, kind="pull"):
            if on_progress is not None:
                on_progress(chunk)
            if chunk.get("status") == "success":
                success = True
        if not success:
            raise OllamaStreamError(f"pull of {model} ended without success")

    def load(self, model: str, *, keep_alive: KeepAlive,
             options: Optional[Mapping[str, Any]] = None, deadline_s: float) -> Dict[str, Any]:
        """Load a model with an empty prompt; returns the final reply (with load_duration)."""
        body: Dict[str, Any] = {"model": model, "prompt": "", "stream": False,
                                "keep_alive": keep_alive}
        if options:
            body["options"] = dict(options)
        reply = self._request("POST", "/api/generate", body=body, deadline_s=deadline_s,
                              kind="load", model=model)
        return dict(self._shaped(lambda: reply_object(reply, "POST /api/generate (load)")))

    def unload(self, model: str, *, deadline_s: float = UNLOAD_DEADLINE_S) -> None:
        """Ask Ollama to unload a model (keep_alive 0); returns at once, memory is freed later."""
        self._request("POST", "/api/generate",
                      body={"model": model, "prompt": "", "stream": False, "keep_alive": 0},
                      deadline_s=deadline_s, kind="unload", model=model)

    # ------------------------------------------------------------------ measured requests
    def generate_stream(self, model: str, prompt: str, *, deadline_s: float,
                        options: Optional[Mapping[str, Any]] = None,
                        keep_alive: Optional[KeepAlive] = None, system: Optional[str] = None,
                        think: Optional[bool] = None,
                        stall_s: Optional[float] = None) -> StreamCapture:
        """Stream POST /api/generate and time every chunk; OllamaStalled after stall_s silent."""
        body: Dict[str, Any] = {"model": model, "prompt": prompt, "stream": True}
        if system:
            body["system"] = system
        return self._measured_stream("/api/generate", body, deadline_s=deadline_s,
                                     options=options, keep_alive=keep_alive, think=think,
                                     stall_s=stall_s)

    def chat_stream(self, model: str, messages: Sequence[Mapping[str, Any]], *,
                    deadline_s: float, options: Optional[Mapping[str, Any]] = None,
                    keep_alive: Optional[KeepAlive] = None,
                    think: Optional[bool] = None,
                    stall_s: Optional[float] = None) -> StreamCapture:
        """Stream POST /api/chat and time every chunk on the client."""
        body: Dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages],
                                "stream": True}
        return self._measured_stream("/api/chat", body, deadline_s=deadline_s,
                                     options=options, keep_alive=keep_alive, think=think,
                                     stall_s=stall_s)

    def _measured_stream(self, path: str, body: Dict[str, Any], *, deadline_s: float,
                         options: Optional[Mapping[str, Any]], keep_alive: Optional[KeepAlive],
                         think: Optional[bool],
                         stall_s: Optional[float] = None) -> StreamCapture:
        if options:
            body["options"] = dict(options)
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if think is not None:
            body["think"] = think
        capture = StreamCapture(started_s=time.perf_counter())
        text: List[str] = []
        thinking: List[str] = []
        done = False
        try:
            done = self._collect(path, body, deadline_s, capture, text, thinking, stall_s)
        finally:
            # Joined once (not per chunk: quadratic for a long stream), also when it failed.
            capture.text = "".join(text)
            capture.thinking = "".join(thinking)
        capture.ended_s = time.perf_counter()
        if not done:
            # A clean end without the final chunk: the server stopped the prediction itself
            # (core/ollama/stream_end.py). What came is a result; nothing at all is an error.
            capture.ended_early = bool(capture.token_chunk_times_s)
            if not capture.ended_early:
                raise OllamaStreamError(f"POST {path}: {ENDED_EARLY_TEXT}, before any text",
                                        capture=capture)
        if not capture.text.strip() and not capture.thinking.strip():
            raise OllamaEmptyResponse(
                f"POST {path}: no text generated (done_reason {capture.done_reason or 'none'})",
                capture=capture)
        return capture

    def _collect(self, path: str, body: Dict[str, Any], deadline_s: float,
                 capture: StreamCapture, text: List[str], thinking: List[str],
                 stall_s: Optional[float] = None) -> bool:
        """Read a measured stream into text and thinking; True when its final chunk came."""
        text_chars = 0
        for chunk in self._stream_lines(path, body, deadline_s=deadline_s, capture=capture,
                                        stall_s=stall_s):
            now = time.perf_counter()
            capture.chunks += 1
            if path == "/api/chat":
                message = chunk.get("message")
                message = message if isinstance(message, dict) else {}
                piece = str(message.get("content") or "")
                thought = str(message.get("thinking") or "")
            else:
                piece = str(chunk.get("response") or "")
                thought = str(chunk.get("thinking") or "")
            if piece or thought:
                capture.token_chunk_times_s.append(now)
            text_chars += len(piece) + len(thought)
            if text_chars > self.limits.max_text_chars:
                raise OllamaReplyTooLarge(
                    f"POST {path}: answer longer than {self.limits.max_text_chars} characters",
                    capture=capture)
            if piece:
                text.append(piece)
                if capture.first_response_chunk_s is None:
                    capture.first_response_chunk_s = now
            if thought:
                thinking.append(thought)
            if chunk.get("done"):
                final = {k: v for k, v in chunk.items()
                         if k not in ("response", "message", "context", "thinking")}
                try:
                    check_final_chunk(final)
                except ReplyShapeError as exc:
                    raise OllamaBadReply(f"POST {path}: {exc}", capture=capture) from None
                capture.final = final
                return True
        return False

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._in_flight.close()
        self._http.close()

    def __enter__(self) -> "OllamaClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
