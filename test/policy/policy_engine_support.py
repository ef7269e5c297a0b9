"""Helpers the container tests share: HTTP waits, the engines' sockets, binds."""

import os
import time

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
PODMAN_HOST = os.environ.get("SHB_PODMAN_HOST", "unix:///tmp/podman/podman.sock")


def wait_http(url, deadline_s=15.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


def tiny_binds():
    """Mount the host's system and this folder read-only (the tiny Ollama needs nothing else)."""
    binds = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64", "/bin", "/etc")
             if os.path.exists(p)}
    binds[HERE] = {"bind": "/policy", "mode": "ro"}
    return binds
