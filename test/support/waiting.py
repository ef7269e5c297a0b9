"""Polling waits: for a condition, for a value to settle, for an HTTP server to answer."""

import time
from typing import Any, Callable

import httpx

POLL_S = 0.05


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll a predicate until it returns something true, or fail at the deadline."""
    value = poll_until(predicate, timeout_s)
    if not value:
        raise AssertionError(f'timed out waiting for {what}')
    return value


def poll_until(predicate: Callable[[], Any], timeout_s: float = 10.0,
               poll_s: float = POLL_S) -> Any:
    """Poll a predicate until it returns something true; its last answer at the deadline."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return predicate()


def settled(read: Callable[[], Any], done: Callable[[Any], bool],
            timeout_s: float = 10.0) -> Any:
    """Read a value until done(value) holds or the deadline passes; the last value read."""
    end = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < end:
        time.sleep(POLL_S)
        value = read()
    return value


def wait_http(url: str, timeout_s: float = 15.0) -> None:
    """Wait until a GET of url gets any HTTP answer; TimeoutError at the deadline."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(POLL_S)
    raise TimeoutError(f'{url} did not answer within {timeout_s} s')
