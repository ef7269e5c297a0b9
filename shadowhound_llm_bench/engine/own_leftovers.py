"""Models this process's runs left loaded or loading: unloaded when the idle node sees them."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, List, Optional, Sequence, Set

from ..core.ollama.model_metadata import same_model
from ..core.decider.decision import Decision
from ..core.decider.policy import MemoryPolicy
from .load_follower import FollowedModel, LoadFollower
from .run_bookends import RunBookends

_LOG = logging.getLogger(__name__)


class OwnLeftovers:
    """
    The models a finished run did not see gone, followed until Ollama holds none of them.

    Only models the run itself loaded are named (the run's end lists the others apart): a model
    the operator had loaded before the run (keep_models_found_loaded) is never touched, and a
    model once seen gone is forgotten, so a later load of it by someone else is left alone.
    """

    def __init__(self, *, base_url: str, policy: Callable[[], MemoryPolicy],
                 busy: Callable[[], bool],
                 record: Optional[Callable[[Decision], None]] = None) -> None:
        self.base_url = base_url
        self._policy = policy
        self._busy = busy
        self._record = record
        self._lock = threading.Lock()
        self._own: Set[str] = set()
        self._followers: List[LoadFollower] = []

    def hand_over(self, bookends: Optional[RunBookends]) -> None:
        """Take over what a run's end followed or saw still listed of its own models."""
        if bookends is None or bookends.end is None:
            return
        end = bookends.end
        kept = set(bookends.start.still_loaded) if bookends.start is not None else set()
        own = [m for m in end.followed if m not in kept]
        own += [m for m, _ in end.still_loaded
                if m not in kept and any(same_model(m, r) for r in bookends.run_models)]
        with self._lock:
            self._own.update(own)
            if bookends.follower is not None:
                self._followers.append(bookends.follower)

    def names(self) -> List[str]:
        """Return the models this process still answers for."""
        with self._lock:
            return sorted(self._own)

    def on_listed(self, listed: Sequence[str]) -> None:
        """Take an /api/ps list: while idle, unload own models shown, forget gone ones."""
        if self._busy():
            return
        with self._lock:
            self._followers = [f for f in self._followers if not f.done]
            followed = {f.model for fr in self._followers for f in fr.models if not f.done}
            shown = [m for m in self._own if any(same_model(m, n) for n in listed)]
            gone = [m for m in self._own if m not in shown and m not in followed]
            self._own.difference_update(gone)
            todo = [m for m in shown if m not in followed]
            if not todo:
                return
            _LOG.warning("Ollama still holds %s, left by a run of this node: unloading",
                         ", ".join(todo))
            now = time.monotonic()
            follower = LoadFollower(base_url=self.base_url, policy=self._policy(),
                                    models=[FollowedModel(m, now, now, loading=False)
                                            for m in todo], record=self._record)
            self._followers.append(follower)
        follower.start()

    def wait(self, timeout_s: float) -> bool:
        """Wait for every follower (at shutdown); False when one still ran at the deadline."""
        end = time.monotonic() + timeout_s
        with self._lock:
            followers = list(self._followers)
        for follower in followers:
            if not follower.wait(max(0.0, end - time.monotonic())):
                return False
        return True

    def stop(self) -> None:
        """Stop following (what is followed then stays as it is)."""
        with self._lock:
            followers = list(self._followers)
        for follower in followers:
            follower.stop()
