"""A Unix-socket proxy in front of the Docker engine that records every API request line."""

import os
import re
import socket
import threading
from typing import List

_REQUEST_LINE = re.compile(rb'(?:^|\r\n)(GET|POST|PUT|DELETE|HEAD) (/\S*) HTTP/1\.[01]\r\n')


class DockerApiRecorder:
    """Forward bytes both ways; note (method, path) of each request the client sends."""

    def __init__(self, *, engine_socket: str, proxy_socket: str) -> None:
        self.engine_socket = engine_socket
        self.proxy_socket = proxy_socket
        self.requests: List[tuple] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(proxy_socket):
            os.unlink(proxy_socket)
        self._listener.bind(proxy_socket)
        self._listener.listen(32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def docker_host(self) -> str:
        return f'unix://{self.proxy_socket}'

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.engine_socket)
            threading.Thread(target=self._pipe, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(engine, client, False),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        tail = b''
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if record:
                    window = tail + data
                    with self._lock:
                        for match in _REQUEST_LINE.finditer(window):
                            if match.end() > len(tail):  # not already seen in the tail
                                self.requests.append((match.group(1).decode(),
                                                      match.group(2).decode()))
                    tail = window[-512:]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def container_targets(self) -> List[str]:
        """Every container a request addressed: /containers/<target>/..."""
        with self._lock:
            paths = [path for _, path in self.requests]
        targets = []
        for path in paths:
            match = re.match(r'^(?:/v[0-9.]+)?/containers/([^/?]+)', path)
            if match:
                targets.append(match.group(1))
        return targets

    def __enter__(self) -> 'DockerApiRecorder':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()
        if os.path.exists(self.proxy_socket):
            os.unlink(self.proxy_socket)
