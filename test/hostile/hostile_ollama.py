"""A hostile HTTP server at an Ollama address: endless, huge, malformed or dripping replies."""

import functools
import gzip
import itertools
import json
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable, Iterator, List, Optional

GIB = 1024 ** 3


@dataclass
class Reply:
    """What the server sends: status, headers, and body pieces (an iterator may never end)."""

    pieces: Callable[[], Iterable[bytes]]
    status: int = 200
    content_length: Optional[int] = None  # None: chunked transfer encoding
    content_type: str = 'application/x-ndjson'
    delay_s: float = 0.0  # between pieces
    headers: List[tuple] = field(default_factory=list)


def line(obj) -> bytes:
    """Encode one NDJSON record; NaN and Infinity allowed, as a hostile server sends them."""
    return (json.dumps(obj, allow_nan=True) + '\n').encode()


def endless_tokens() -> Iterator[bytes]:
    """Yield token lines forever: a stream that never sends its final chunk."""
    for _ in itertools.count():
        yield line({'model': 'm', 'response': 'x', 'done': False})


def endless_bytes(piece: bytes = b'x' * 65536) -> Iterator[bytes]:
    """Bytes without end and without a newline: a line (or a body) that never ends."""
    while True:
        yield piece


def huge_stream(total_bytes: int) -> Iterator[bytes]:
    """Yield a valid-looking token stream of total_bytes (a multi-GB body when asked)."""
    token = line({'model': 'm', 'response': 'y' * 900, 'done': False})
    block = token * 64
    sent = 0
    while sent < total_bytes:
        yield block
        sent += len(block)


@functools.lru_cache(maxsize=8)
def gzip_bomb(decoded_bytes: int, layers: int = 1) -> bytes:
    """Return gzip of decoded_bytes of zeros, gzipped again `layers - 1` times (stacked)."""
    if layers > 1:
        return gzip.compress(gzip_bomb(decoded_bytes, layers - 1), 9)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = []
    for start in range(0, decoded_bytes, len(block)):
        parts.append(packer.compress(block[:decoded_bytes - start]))
    return b''.join(parts) + packer.flush()


def gzip_reply(body: bytes, *, encoding: str = 'gzip', status: int = 200,
               content_type: str = 'application/json', chunked: bool = False,
               piece_bytes: int = 0, delay_s: float = 0.0) -> Reply:
    """Build a reply whose body is already encoded and says so in Content-Encoding."""
    size = piece_bytes or len(body) or 1
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return Reply(pieces=lambda: pieces, status=status, content_type=content_type,
                 content_length=None if chunked else len(body), delay_s=delay_s,
                 headers=[('Content-Encoding', encoding)])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        self.server.requests += 1
        self.server.last_headers = dict(self.headers.items())
        reply: Reply = self.server.reply_for(self.command, self.path, body)
        self.send_response(reply.status)
        self.send_header('Content-Type', reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        chunked = reply.content_length is None
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Content-Length', str(reply.content_length))
        self.end_headers()
        self.close_connection = True
        try:
            for piece in reply.pieces():
                if chunked:
                    self.wfile.write(b'%x\r\n%s\r\n' % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if self.server.stopping.is_set():
                    return
            if chunked:
                self.wfile.write(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass  # the client gave up, as it should

    do_GET = _serve
    do_POST = _serve


class HostileServer(ThreadingHTTPServer):
    """Serve `replies[path]` (or `default`) on 127.0.0.1 at a free port, in a thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, default: Reply) -> None:
        super().__init__(('127.0.0.1', 0), _Handler)
        self.default = default
        self.replies = {}
        self.requests = 0
        self.last_headers = {}
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.server_address[1]}'

    def reply_for(self, method: str, path: str, body: bytes) -> Reply:
        return self.replies.get(path.split('?')[0], self.default)

    def __enter__(self) -> 'HostileServer':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
