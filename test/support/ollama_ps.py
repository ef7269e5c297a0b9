"""What an Ollama server (real or simulated) holds, read from /api/ps, and waits on it."""

import time
from typing import List, Optional

import httpx
import pytest


def listed(url: str, timeout_s: float = 5.0) -> Optional[List[str]]:
    """Names in /api/ps (None while the server does not answer)."""
    try:
        reply = httpx.get(f'{url}/api/ps', timeout=timeout_s)
        return [m['name'] for m in reply.json()['models']]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def unload_all(url: str, timeout_s: float = 30.0, wait_s: float = 10.0) -> None:
    """Ask the server to unload every model; wait (wait_s at most) until /api/ps lists none."""
    with httpx.Client(base_url=url, timeout=timeout_s) as http:
        for name in listed(url) or []:
            http.post('/api/generate', json={'model': name, 'keep_alive': 0})
    end = time.monotonic() + wait_s
    while listed(url) and time.monotonic() < end:
        time.sleep(0.05)


def wait_empty(url: str, deadline_s: float) -> float:
    """
    Watch /api/ps for deadline_s; return when it became empty for good, fail if not empty.

    A load a cancel cut shows up seconds later: the first empty answer proves nothing.
    """
    started = time.monotonic()
    names, empty_since = None, None
    while time.monotonic() - started < deadline_s:
        names = listed(url)
        if names:
            empty_since = None
        elif names == [] and empty_since is None:
            empty_since = time.monotonic() - started
        time.sleep(0.05)
    if names != [] or empty_since is None:
        pytest.fail(f'/api/ps still lists {names} {deadline_s:.0f} s after the result')
    return empty_since
