"""
In-flight HTTP requests that another thread can cut: cancel, preemption, deadlines, stalls.

httpx offers no way to stop a blocking request from outside, and Ollama sends no header until a
load has finished, so the socket is captured when it is opened (a network backend that registers
each new connection with the request the opening thread is making) and shut down on interrupt:
the blocked read returns at once and the caller raises the interrupt's cause. Connections are not
kept alive, so every request has its own socket. A watchdog thread enforces each request's
whole-request deadline and, for streams, the longest gap between two chunks.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional

import httpcore
import httpx

# How often the watchdog looks at the deadlines and stalls of the requests in flight.
WATCH_PERIOD_S = 0.05

CANCELED = "canceled"
PREEMPTED = "preempted"
DEADLINE = "deadline"
STALLED = "stalled"
# Requests that make Ollama load a model (a stream loads it on demand).
LOADING_KINDS = ("load", "stream")


@dataclass
class InFlightRequest:
    """One request being made: what it is for, its deadlines, and how it was interrupted."""

    kind: str  # load | stream | unload | call | pull
    label: str  # "POST /api/generate" for messages
    model: str
    deadline_s: float
    stall_s: Optional[float] = None  # longest gap between two chunks (streams)
    started_s: float = field(default_factory=time.monotonic)
    last_progress_s: float = field(default_factory=time.monotonic)
    cause: Optional[str] = None  # canceled | preempted | deadline | stalled, once interrupted
    reason: str = ""
    _sockets: List[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self) -> None:
        """Note that a chunk arrived (the stall timer starts again)."""
        self.last_progress_s = time.monotonic()

    def attach(self, sock: Optional[socket.socket]) -> None:
        """Register the socket this request uses; shut it at once when already interrupted."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            interrupted = self.cause is not None
        if interrupted:
            _shutdown(sock)

    def interrupt(self, cause: str, reason: str) -> bool:
        """Cut the request (first cause wins); True when this call interrupted it."""
        with self._lock:
            if self.cause is not None:
                return False
            self.cause, self.reason = cause, reason
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)
        return True


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to cut


class InFlightRegistry:
    """Every request a client has in flight, a watchdog over their deadlines, and interrupts."""

    def __init__(self, *, watch_period_s: float = WATCH_PERIOD_S) -> None:
        self.watch_period_s = watch_period_s
        self._lock = threading.Lock()
        self._requests: List[InFlightRequest] = []
        self._local = threading.local()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # Loads (and streams, which load on demand) cut before their answer: the server may
        # still be loading the model, and a load that ends after its client left stays loaded.
        self._abandoned: List[InFlightRequest] = []

    def begin(self, *, kind: str, label: str, model: str = "", deadline_s: float,
              stall_s: Optional[float] = None) -> InFlightRequest:
        """Register a request made by the calling thread (end() it in a finally)."""
        request = InFlightRequest(kind=kind, label=label, model=model, deadline_s=deadline_s,
                                  stall_s=stall_s)
        with self._lock:
            self._requests.append(request)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._watch, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
        self._local.current = request
        return request

    def end(self, request: InFlightRequest) -> None:
        """Forget a request that is over (answered or failed)."""
        with self._lock:
            if request in self._requests:
                self._requests.remove(request)
                if request.cause is not None and request.kind in LOADING_KINDS \
                        and request.model:
                    self._abandoned.append(request)
        if getattr(self._local, "current", None) is request:
            self._local.current = None

    def current(self) -> Optional[InFlightRequest]:
        """Return the request the calling thread is making, if any."""
        return getattr(self._local, "current", None)

    def in_flight(self) -> List[InFlightRequest]:
        """Every request in flight now."""
        with self._lock:
            return list(self._requests)

    def abandoned(self, since_s: float = 0.0) -> List[InFlightRequest]:
        """Return the loads and streams cut before their answer (started at or after since_s)."""
        with self._lock:
            return [r for r in self._abandoned if r.started_s >= since_s]

    def interrupt(self, *, cause: str, reason: str, kinds: Optional[Iterable[str]] = None,
                  model: str = "") -> List[InFlightRequest]:
        """Cut the requests of these kinds (all when None), of one model when named."""
        wanted = set(kinds) if kinds is not None else None
        cut = []
        for request in self.in_flight():
            if wanted is not None and request.kind not in wanted:
                continue
            if model and request.model and request.model != model:
                continue
            if request.interrupt(cause, reason):
                cut.append(request)
        return cut

    def _watch(self) -> None:
        while not self._closed.wait(self.watch_period_s):
            now = time.monotonic()
            for request in self.in_flight():
                if now - request.started_s > request.deadline_s:
                    request.interrupt(DEADLINE, f"{request.label}: no complete answer within "
                                      f"its {request.deadline_s:.1f} s deadline")
                elif request.stall_s is not None and \
                        now - request.last_progress_s > request.stall_s:
                    request.interrupt(STALLED, f"{request.label}: stream stalled, no chunk "
                                      f"for {request.stall_s:.1f} s")

    def close(self) -> None:
        """Stop the watchdog (requests still in flight keep their httpx timeouts)."""
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


class _RegisteringBackend(httpcore.NetworkBackend):
    """Opens TCP connections as httpcore does and hands each socket to the current request."""

    def __init__(self, registry: InFlightRegistry) -> None:
        self._registry = registry
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: Optional[float] = None,
                    local_address: Optional[str] = None,
                    socket_options: Optional[Iterable[Any]] = None) -> httpcore.NetworkStream:
        """Connect, then attach the socket to the request this thread is making."""
        stream = self._inner.connect_tcp(host, port, timeout=timeout,
                                         local_address=local_address,
                                         socket_options=socket_options)
        request = self._registry.current()
        if request is not None:
            request.attach(stream.get_extra_info("socket"))
        return stream

    def connect_unix_socket(self, path: str, timeout: Optional[float] = None,
                            socket_options: Optional[Iterable[Any]] = None
                            ) -> httpcore.NetworkStream:
        """Connect over a unix socket, attaching it like a TCP one."""
        stream = self._inner.connect_unix_socket(path, timeout=timeout,
                                                 socket_options=socket_options)
        request = self._registry.current()
        if request is not None:
            request.attach(stream.get_extra_info("socket"))
        return stream

    def sleep(self, seconds: float) -> None:
        """Sleep as httpcore's own backend does."""
        self._inner.sleep(seconds)


def interruptible_transport(registry: InFlightRegistry) -> httpx.HTTPTransport:
    """Build an httpx transport whose connections are never reused and can be cut."""
    transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
    # httpx has no argument for the network backend; its pool keeps it in this attribute.
    transport._pool._network_backend = _RegisteringBackend(registry)  # noqa: SLF001
    return transport
