"""A cancel request that reaches every wait and every request in flight at once."""

from __future__ import annotations

import logging
import threading
from typing import Callable, List, Optional

_LOG = logging.getLogger(__name__)

# A plain threading.Event handed in by a caller is looked at this often.
FOLLOW_PERIOD_S = 0.05

CancelCallback = Callable[[str], None]


class CancelToken(threading.Event):
    """
    A threading.Event whose set() also runs callbacks (cut the HTTP request, stop a wait).

    Callbacks run once, in the thread that cancels, in the order they were added; one added
    after the cancel runs at once. The reason says who canceled and why.
    """

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: List[CancelCallback] = []
        self._callbacks_lock = threading.Lock()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        """Cancel with a reason (the first reason is kept)."""
        with self._callbacks_lock:
            if self.is_set():
                return
            self.reason = reason
            super().set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            self._run(callback)

    def set(self) -> None:
        """Cancel without a reason of the caller's (threading.Event's interface)."""
        self.cancel(self.reason or "canceled by request")

    def on_cancel(self, callback: CancelCallback) -> None:
        """Run callback(reason) when canceled (now, when already canceled)."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        self._run(callback)

    def _run(self, callback: CancelCallback) -> None:
        try:
            callback(self.reason)
        except Exception as exc:  # one failing callback must not keep the others from running
            _LOG.warning("cancel callback failed: %s", exc)

    @classmethod
    def following(cls, event: Optional[threading.Event],
                  until: Optional[threading.Event] = None) -> "CancelToken":
        """
        Return a token for a caller's event: the event itself, or a token that follows it.

        A plain event is watched on a daemon thread every FOLLOW_PERIOD_S until `until` is set.
        """
        if isinstance(event, CancelToken):
            return event
        token = cls()
        if event is None:
            return token
        if event.is_set():
            token.cancel("canceled by request")
            return token
        stop = until or threading.Event()

        def follow() -> None:
            while not stop.is_set() and not token.is_set():
                if event.wait(FOLLOW_PERIOD_S):
                    token.cancel("canceled by request")
                    return

        threading.Thread(target=follow, name="cancel-follower", daemon=True).start()
        return token
