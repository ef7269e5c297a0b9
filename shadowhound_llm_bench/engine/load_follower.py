"""
Follow what a run left behind until Ollama holds none of it: loads still running, unloads pending.

A load cut by a cancel, a preemption or a deadline goes on inside Ollama, and a load that ends
after its client left stays loaded for its keep_alive (the unload sent meanwhile was answered at
once: the model was not loaded yet). So each such model is followed on a thread of its own
client: /api/ps is polled (FAST_POLL_S, then SLOW_POLL_S) until the model shows up, then the
policy's run-end decision unloads it (keep_alive 0) and /api/ps is polled until it is gone and
the memory is read again. A model never seen loaded is given up at its deadline, when the
server stopped answering and came back (a restart ends every load), or when the backend sees the
server's processes and no model runner beyond those of the listed models is left for
RUNNERS_GONE_S: the real Ollama ends a load whose client left, so no load is under way any more.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from ..adapters.ollama_client import OllamaClient, OllamaError, OllamaUnavailable
from ..core.ollama.model_metadata import same_model
from ..core.decider.decision import Action, Decision
from ..core.decider.policy import MemoryPolicy

_LOG = logging.getLogger(__name__)

FAST_POLL_S = 0.05
SLOW_POLL_S = 0.25
FAST_FOR_S = 30.0  # a load that has not ended by then is polled less often
PS_DEADLINE_S = 2.0
UNLOAD_DEADLINE_S = 5.0  # the unload request's own deadline
GONE_DEADLINE_S = 30.0  # from the unload until /api/ps must have dropped the model
RUNNERS_GONE_S = 3.0  # no runner left for a load this long: the load ended without the model
UNREACHABLE_S = 1.0  # the server refusing connections this long is not running: nothing loads
UNREACHABLE: List[str] = ["\0unreachable"]  # _listed's answer when the server is not there


@dataclass
class FollowedModel:
    """One model followed after its run ended, and how it ended."""

    model: str
    since_s: float  # time.monotonic() when following began
    deadline_s: float  # time.monotonic() after which a model never seen loaded is given up
    loading: bool  # its load was cut (still running in Ollama); else it was unloading
    outcome: str = ""  # unloaded | not loaded | left loaded | server restarted
    reason: str = ""
    gone_after_s: Optional[float] = None  # from following to /api/ps without it
    memory_before_bytes: Optional[int] = None
    memory_after_bytes: Optional[int] = None

    @property
    def done(self) -> bool:
        """Tell whether following it is over."""
        return bool(self.outcome)

    @property
    def left_loaded(self) -> bool:
        """Tell whether Ollama may still hold it."""
        return self.outcome in ("", "left loaded")

    def to_dict(self) -> Dict[str, object]:
        """Return the log record's fields."""
        return {"model": self.model, "loading": self.loading, "outcome": self.outcome,
                "reason": self.reason, "gone_after_s": self.gone_after_s,
                "memory_before_bytes": self.memory_before_bytes,
                "memory_after_bytes": self.memory_after_bytes}


Recorder = Callable[[Decision], None]


class LoadFollower:
    """Follows models on a daemon thread until each is unloaded, never loaded, or given up."""

    def __init__(self, *, base_url: str, policy: MemoryPolicy,
                 models: Sequence[FollowedModel], record: Optional[Recorder] = None,
                 memory_in_use: Optional[Callable[[], Optional[int]]] = None,
                 runners: Optional[Callable[[], Optional[int]]] = None,
                 on_done: Optional[Callable[["LoadFollower"], None]] = None) -> None:
        self.base_url = base_url
        self.policy = policy
        self.models = list(models)
        self._record = record
        self._memory_in_use = memory_in_use
        self._runners = runners  # how many model runners the server has (None: cannot tell)
        self._no_load_since: Optional[float] = None
        self.on_done = on_done
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "LoadFollower":
        """Start following (at once done when there is nothing to follow)."""
        if not self.models:
            self._finished.set()
            return self
        self._thread = threading.Thread(target=self._run, name="load-follower", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout_s: float) -> bool:
        """Wait until every model's following is over; False when the deadline came first."""
        return self._finished.wait(timeout_s)

    @property
    def done(self) -> bool:
        """Tell whether following is over."""
        return self._finished.is_set()

    def stop(self) -> None:
        """Give up following (what is still followed is reported as left loaded)."""
        self._stop.set()

    def server_restarted(self) -> None:
        """Mark every model still followed as ended with a server restart (no load survives it)."""
        for followed in self.models:
            if not followed.done:
                followed.outcome, followed.reason = "server restarted", \
                    "the server was restarted: its load ended with it"

    def _run(self) -> None:
        client = OllamaClient(base_url=self.base_url, connect_timeout_s=PS_DEADLINE_S,
                              request_timeout_s=PS_DEADLINE_S)
        try:
            self._follow(client)
        except Exception as exc:  # following must end with an outcome, never hang
            _LOG.error("following the run's models failed: %s", exc)
            for followed in self.models:
                if not followed.done:
                    followed.outcome, followed.reason = "left loaded", f"following failed: {exc}"
        finally:
            client.close()
            if self.on_done is not None:
                try:
                    self.on_done(self)
                except Exception as exc:  # a report that cannot be written: logged
                    _LOG.error("cannot record the followed models: %s", exc)
            self._finished.set()

    def _follow(self, client: OllamaClient) -> None:
        started = time.monotonic()
        unanswered = False
        unreachable_since: Optional[float] = None
        while not self._stop.is_set():
            pending = [f for f in self.models if not f.done]
            if not pending:
                return
            listed = _listed(client)
            now = time.monotonic()
            if listed is UNREACHABLE:  # refused: no server runs there, so no load goes on
                unreachable_since = unreachable_since or now
                if now - unreachable_since >= UNREACHABLE_S:
                    for followed in pending:
                        self._gone(followed, "not loaded" if followed.loading else "unloaded",
                                   "the server is not running (connections refused for "
                                   f"{UNREACHABLE_S:g} s): no load or model survives that")
                    return
                unanswered = True
            elif listed is None:
                unanswered = True
            else:
                unreachable_since = None
                if unanswered:  # the server went away and came back: no load survived that
                    self.server_restarted()
                    unanswered = False
                for followed in pending:
                    if followed.done:
                        continue
                    if any(same_model(followed.model, name) for name in listed):
                        self._unload(client, followed)
                    elif not followed.loading:
                        self._gone(followed, "unloaded", "/api/ps no longer lists it")
                    elif self._no_load_under_way(listed, now):
                        self._gone(followed, "not loaded", (
                            "its load ended without it: the server has no model runner beyond "
                            f"the {len(listed)} model(s) /api/ps lists (Ollama stopped the load "
                            "when its client left)"))
                    elif now >= followed.deadline_s:
                        followed.outcome, followed.reason = "not loaded", (
                            "never listed in /api/ps before its load deadline: the load "
                            "ended without loading it")
            period = FAST_POLL_S if now - started < FAST_FOR_S else SLOW_POLL_S
            self._stop.wait(period)
        for followed in self.models:
            if not followed.done:
                followed.outcome, followed.reason = "left loaded", "following was stopped"

    def _no_load_under_way(self, listed: Sequence[str], now: float) -> bool:
        """Tell whether no runner beyond the listed models' has been seen for RUNNERS_GONE_S."""
        count = self._runners() if self._runners is not None else None
        if count is None or count > len(listed):
            self._no_load_since = None
            return False
        if self._no_load_since is None:
            self._no_load_since = now
        return now - self._no_load_since >= RUNNERS_GONE_S

    def _unload(self, client: OllamaClient, followed: FollowedModel) -> None:
        """Apply the policy's run-end decision to a model that showed up; wait until it is gone."""
        decision = self.policy.at_run_end([followed.model])
        decision = Decision(decision.action, f"{decision.reason} (its load ended after the "
                            "run had ended)" if followed.loading else decision.reason,
                            models_to_unload=decision.models_to_unload)
        if self._record is not None:
            self._record(decision)
        if decision.action is not Action.UNLOAD:
            followed.outcome, followed.reason = "left loaded", decision.reason
            return
        followed.memory_before_bytes = self._memory()
        try:
            client.unload(followed.model, deadline_s=UNLOAD_DEADLINE_S)
        except OllamaError as exc:
            _LOG.warning("unload of %s failed: %s", followed.model, exc)
        end = time.monotonic() + GONE_DEADLINE_S
        while time.monotonic() < end and not self._stop.is_set():
            listed = _listed(client)
            if listed is not None and not any(same_model(followed.model, n) for n in listed):
                self._gone(followed, "unloaded", "unloaded (keep_alive 0) after its load ended"
                           if followed.loading else "/api/ps dropped it")
                return
            self._stop.wait(FAST_POLL_S)
        followed.outcome, followed.reason = "left loaded", (
            f"still listed in /api/ps {GONE_DEADLINE_S:.0f} s after the unload")

    def _gone(self, followed: FollowedModel, outcome: str, reason: str) -> None:
        followed.gone_after_s = time.monotonic() - followed.since_s
        followed.memory_after_bytes = self._memory()
        followed.outcome, followed.reason = outcome, reason

    def _memory(self) -> Optional[int]:
        if self._memory_in_use is None:
            return None
        try:
            return self._memory_in_use()
        except Exception as exc:  # a reading that fails leaves the number unknown
            _LOG.warning("memory reading for a followed model failed: %s", exc)
            return None


def _listed(client: OllamaClient) -> Optional[List[str]]:
    try:
        return [str(e.get("name") or e.get("model") or "") for e in client.ps()]
    except OllamaUnavailable:
        return UNREACHABLE
    except OllamaError:
        return None
