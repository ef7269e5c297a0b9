"""Loopback ports for the servers that tests, benchmarks, the demo and the simulator start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])
