"""
Start every run from the truth and end it in the promised state, around the benchmark runner.

Before the first decision: a stopped container is started as the policy restarts a lost server,
and models already loaded (by a killed run, another client) are found through /api/ps and
unloaded as the policy says, so no footprint is measured from a baseline that includes them.
After the last model (also after cancel, failure or an exception): the models the run loaded
are unloaded and verified, and what is still loaded is reported with its reason. Both ends are
appended to the run's log (type "residency") and the reports are rendered again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..adapters.model_runners import runner_counter
from ..adapters.ollama_client import OllamaClient, OllamaError
from ..core.memory.memory_reading import ContainerState
from ..core.ollama.model_metadata import same_model
from ..core.decider.decision import Action, Decision
from ..core.decider.residency import UNVERIFIED, cleanup_verdict
from ..core.runs.run_records import record
from ..reports.jsonl_log import LOG_NAME, JsonlLog, read_records
from ..reports.render import render_reports
from .load_follower import FAST_POLL_S, FollowedModel, LoadFollower
from .memory_guard import PolicyMemoryGuard

_LOG = logging.getLogger(__name__)

RUN_START_LABEL = "the start of the run"
# How long the run's end looks for /api/ps to drop what it unloaded; longer is followed.
VERIFY_S = 10.0
CANCELED_PS_DEADLINE_S = 1.0  # after a cancel: a slower answer leaves the list to the follower
UNKNOWN_FOLLOW_S = 30.0  # /api/ps silent at the end: how long each model is looked for


@dataclass
class RunStart:
    """What the run found before its first decision and what was done about it."""

    container_started: bool = False
    container_problem: str = ""  # non-empty: the container could not be brought up
    found_loaded: List[str] = field(default_factory=list)
    action: str = "none"  # none | unloaded | restarted | left loaded
    still_loaded: List[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """Return the log record's fields."""
        return {"container_started": self.container_started,
                "container_problem": self.container_problem,
                "found_loaded": list(self.found_loaded), "action": self.action,
                "still_loaded": list(self.still_loaded), "reason": self.reason}


@dataclass
class RunEnd:
    """What Ollama still holds after the run, each model with the reason (the one truth)."""

    unloaded: List[str] = field(default_factory=list)
    still_loaded: List[Tuple[str, str]] = field(default_factory=list)  # (model, reason)
    verified: bool = False  # /api/ps answered after the cleanup
    reason: str = ""
    followed: List[str] = field(default_factory=list)  # loading or unloading: followed on
    cleanup: str = UNVERIFIED  # core/decider/residency.cleanup_verdict, judged once in close()

    def to_dict(self) -> Dict[str, Any]:
        """Return the log record's fields."""
        return {"unloaded": list(self.unloaded), "verified": self.verified,
                "still_loaded": [{"model": m, "reason": r} for m, r in self.still_loaded],
                "followed": list(self.followed), "cleanup": self.cleanup,
                "reason": self.reason}


def _listed(client: OllamaClient, deadline_s: Optional[float] = None) -> Optional[List[str]]:
    try:
        entries = client.ps() if deadline_s is None else client.ps(deadline_s=deadline_s)
        return [str(e.get("name") or e.get("model") or "") for e in entries]
    except OllamaError as exc:
        _LOG.warning("cannot list loaded models: %s", exc)
        return None


class RunBookends:
    """The two ends of one run over a PolicyMemoryGuard (the guard's policy decides)."""

    def __init__(self, guard: PolicyMemoryGuard, client: OllamaClient, *,
                 run_models: Sequence[str] = (), keep_others: bool = False,
                 load_deadline_s: float = 600.0) -> None:
        self.guard = guard
        self.client = client
        self.run_models = list(run_models)
        # Models another client had loaded stay loaded and are counted (policy.at_run_start).
        self.keep_others = keep_others
        self.start: Optional[RunStart] = None
        self.end: Optional[RunEnd] = None
        self.opened_s = time.monotonic()
        # A cut load goes on in Ollama for up to its deadline; the follower watches it end.
        self.load_deadline_s = load_deadline_s
        self.follower: Optional[LoadFollower] = None

    # ------------------------------------------------------------------ start
    def open(self) -> RunStart:
        """Bring the container up if the policy says so, then clear models left loaded."""
        start = RunStart()
        self.start = start
        self._container_up(start)
        if start.container_problem:
            return start
        listed = _listed(self.client)
        if not listed:
            self._reset_baseline()
            return start
        start.found_loaded = listed
        guard = self.guard
        decision = guard.policy.at_run_start(listed, run_models=self.run_models,
                                             keep_others=self.keep_others)
        reading = guard.monitor.sample_now()
        guard.log.decision("", decision, reading, action=decision.action.value)
        start.reason = decision.reason
        start.action = "kept and counted"
        if decision.action is Action.UNLOAD_OTHERS:
            start.action = "unloaded"
            if guard.decider.unload_and_judge(decision.models_to_unload):
                start.action = "restarted"
        remaining = _listed(self.client)
        start.still_loaded = [m for m in (remaining or []) if m]
        if remaining is None:
            start.still_loaded = list(listed)
        wanted_gone = set(decision.models_to_unload)
        if any(m in wanted_gone for m in start.still_loaded):
            start.action = "left loaded"
        elif start.still_loaded and start.action == "unloaded":
            start.action = "unloaded, others kept and counted"
        why = ("loaded before the run and not unloaded: its footprint is not measured in this "
               "run")
        for model in start.still_loaded:
            guard.unmeasurable[model] = why
        if self.keep_others:  # kept for their client: nothing of this run unloads them
            guard.keep_found_loaded([m for m in start.still_loaded
                                     if not any(same_model(m, r) for r in self.run_models)])
        self._reset_baseline()
        return start

    def _container_up(self, start: RunStart) -> None:
        """Start a container that is not running, as the policy restarts a lost server."""
        guard = self.guard
        try:
            state = guard.backend.state()
        except Exception as exc:  # a backend that cannot tell: Ollama's answer decides
            _LOG.warning("cannot read the container state: %s", exc)
            state = ContainerState.UNKNOWN
        answering = True
        try:
            self.client.version()
        except OllamaError as exc:
            answering = False
            error = str(exc)
        if answering and state in (ContainerState.RUNNING, ContainerState.UNKNOWN):
            return
        if answering:
            error = f"container {state.name.lower()}"
        decision = guard.policy.on_server_lost(RUN_START_LABEL, error, 1, state)
        guard.log.decision("", decision, guard.monitor.sample_now())
        if decision.action is not Action.RESTART:
            start.container_problem = decision.reason
            return
        if guard.actions.restart("", decision.reason):
            start.container_started = True
        else:
            start.container_problem = (f"{decision.reason}; the restart failed (see the "
                                       "decisions)")

    def _reset_baseline(self) -> None:
        """Measure the empty container's working set again, now that nothing is loaded."""
        guard = self.guard
        reading = guard.monitor.sample_now()
        listed = _listed(self.client)
        if listed == []:
            guard.readings.empty_working_set_bytes = reading.memory_in_use_bytes
        else:
            guard.readings.empty_working_set_bytes = None
        guard.monitor.set_loaded_models(len(listed or []))

    # ------------------------------------------------------------------ end
    def close(self, run_models: Sequence[str]) -> RunEnd:
        """Unload what the run loaded and verify it; never raises (it runs in finally blocks)."""
        end = RunEnd()
        self.end = end
        try:
            self._close(run_models, end)
        except Exception as exc:  # the run's result must still be delivered
            _LOG.error("cleanup after the run failed: %s", exc)
            end.reason = f"cleanup after the run failed: {type(exc).__name__}: {exc}"
        return end

    def _close(self, run_models: Sequence[str], end: RunEnd) -> None:
        guard = self.guard
        canceled = guard.canceled()
        listed = _listed(self.client, CANCELED_PS_DEADLINE_S if canceled else None)
        if listed is None:
            end.reason = "Ollama did not answer /api/ps after the run: what it holds is unknown"
            self._follow(run_models, [], end, unknown=True)
            return
        ours = [m for m in listed if any(same_model(m, r) for r in run_models)]
        others = [m for m in listed if m not in ours]
        decision = guard.policy.at_run_end(ours)
        guard.log.decision("", decision, guard.monitor.latest() if canceled
                           else guard.monitor.sample_now())
        end.reason = decision.reason
        if decision.action is Action.UNLOAD and ours and not canceled:
            guard.decider.unload_and_judge(decision.models_to_unload)
        # Canceled: whoever canceled waits for the result; the follower (started right after)
        # sends the unloads of what is listed here and confirms them in /api/ps.
        after = listed if canceled else _wait_unlisted(self.client, ours, VERIFY_S)
        end.verified = after is not None
        after = after if after is not None else listed
        guard.monitor.set_loaded_models(len(after))
        followed = self._follow(run_models, after, end)
        start_left = set(self.start.still_loaded) if self.start else set()
        own_left = []
        for model in after:
            if model in start_left:
                why = ("loaded before the run by another client: kept and counted"
                       if self.keep_others and model not in self.run_models
                       else "loaded before the run and could not be unloaded")
            elif model in others:
                why = "not loaded by this run (another client): left alone"
            elif model in followed:
                why = "unloading: followed until /api/ps drops it"
            elif not end.verified:
                why = "Ollama did not answer after the unload: unverified"
            else:
                why = "still listed in /api/ps after the unload deadline"
            if model not in others and model not in start_left:
                own_left.append(model)
            end.still_loaded.append((model, why))
        for model in followed:
            if model not in after:
                end.still_loaded.append((model, "loading when the run ended: followed, "
                                                "unloaded once its load ends"))
        end.unloaded = [m for m in ours if m not in after]
        end.cleanup = cleanup_verdict(verified=end.verified, own_left=own_left,
                                      followed=end.followed)

    def _follow(self, run_models: Sequence[str], listed: Sequence[str], end: RunEnd, *,
                unknown: bool = False) -> List[str]:
        """
        Follow the models of the run a cut load may still bring, or still listed.

        unknown: /api/ps did not answer; every model of the run is looked for a while.
        """
        now = time.monotonic()
        loading = []
        for request in self.client.abandoned_loads(self.opened_s):
            if request.model not in loading and \
                    any(same_model(request.model, r) for r in run_models):
                loading.append(request.model)
        deadline = now + self.load_deadline_s
        models = [FollowedModel(m, now, deadline, loading=True) for m in loading
                  if not any(same_model(m, n) for n in listed)]
        if unknown:
            models += [FollowedModel(m, now, now + UNKNOWN_FOLLOW_S, loading=True)
                       for m in run_models if m not in loading]
        models += [FollowedModel(m, now, now, loading=False) for m in listed
                   if any(same_model(m, r) for r in run_models)]
        end.followed = [f.model for f in models]
        if models:
            self.follower = LoadFollower(
                base_url=self.client.base_url, policy=self.guard.policy, models=models,
                record=self._record_followed_decision, memory_in_use=self._memory_in_use,
                runners=runner_counter(self.guard.backend))
        return end.followed

    def _record_followed_decision(self, decision: Decision) -> None:
        self.guard.log.decision("", decision, self.guard.monitor.latest())

    def _memory_in_use(self) -> Optional[int]:
        return self.guard.monitor.sample_now().memory_in_use_bytes


def _wait_unlisted(client: OllamaClient, models: Sequence[str],
                   deadline_s: float) -> Optional[List[str]]:
    """Poll /api/ps until it lists none of models or the deadline; its last list (None: silent)."""
    end = time.monotonic() + deadline_s
    while True:
        listed = _listed(client)
        if listed is not None and not any(same_model(m, n) for m in models for n in listed):
            return listed
        if time.monotonic() >= end:
            return listed
        time.sleep(FAST_POLL_S)


def record_bookends(run_dir: Optional[Path], bookends: RunBookends, *,
                    plot: bool = True) -> None:
    """Append both ends to the run's log and render its reports again (they then say it)."""
    records = []
    if bookends.start is not None:
        records.append(dict(when="start", **bookends.start.to_dict()))
    if bookends.end is not None:
        records.append(dict(when="end", **bookends.end.to_dict()))
    _append_residency(run_dir, records, plot=plot)


def record_followed(run_dir: Optional[Path], follower: LoadFollower) -> None:
    """Append how the followed models ended (residency "followed") and render the reports."""
    _append_residency(run_dir, [{"when": "followed",
                                 "models": [f.to_dict() for f in follower.models]}], plot=True)


def _append_residency(run_dir: Optional[Path], fields: Sequence[Dict[str, Any]], *,
                      plot: bool) -> None:
    if run_dir is None or not (Path(run_dir) / LOG_NAME).is_file() or not fields:
        return
    log_path = Path(run_dir) / LOG_NAME
    records, _ = read_records(log_path)
    session = max((int(r.get("session") or 0) for r in records), default=1)
    with JsonlLog(path=log_path) as log:
        for item in fields:
            log.append(record("residency", session=session, **item))
    # A canceled run's memory.png is being drawn already (the runner's): not a second time.
    render_reports(Path(run_dir), plot=plot)


def run_between_bookends(guard: Optional[PolicyMemoryGuard], client: OllamaClient,
                         run: Callable[[], Any], run_models: Sequence[str], *,
                         keep_others: bool = False, load_deadline_s: float = 600.0,
                         run_dir: Optional[Callable[[], Optional[Path]]] = None
                         ) -> Tuple[Any, Optional[RunBookends]]:
    """
    Open the bookends, call run() (a runner's run), close them whatever happened.

    Without a PolicyMemoryGuard (unguarded runs) run() is called alone. keep_others leaves
    models another client had loaded before the run loaded (counted). The run's folder (the
    outcome's, or run_dir() when run() raised) gets the residency records and fresh reports.
    Models still loading or unloading at the end are followed on (bookends.follower, started
    here); when that is over their outcome is appended to the same folder.
    """
    if not isinstance(guard, PolicyMemoryGuard):
        return run(), None
    bookends = RunBookends(guard, client, run_models=run_models, keep_others=keep_others,
                           load_deadline_s=load_deadline_s)
    bookends.open()
    outcome = None
    try:
        outcome = run()
    finally:
        bookends.close(run_models)
        folder = getattr(outcome, "run_dir", None)
        if folder is None and run_dir is not None:
            folder = run_dir()
        canceled = guard.canceled()
        try:
            record_bookends(folder, bookends, plot=not canceled)
        except Exception as exc:  # the reports of the run itself are already written
            _LOG.error("cannot add the cleanup to the run's reports: %s", exc)
        follower = bookends.follower
        if follower is not None:
            follower.on_done = lambda done: record_followed(folder, done)
            follower.start()
    return outcome, bookends
