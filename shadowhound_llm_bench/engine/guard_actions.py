"""
What the memory guard does to Ollama and its container: unload, restart, drop caches, wait.

Each action is carried out as decided elsewhere (the one decider, core/decider/policy.py) and
recorded with its time: an unload is watched until /api/ps drops the models and their memory is
judged from fresh samples, a restart until Ollama answers again. Closing or canceling ends every
wait at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..adapters.container_backend import (
    ContainerBackend, ContainerControlUnavailable, ContainerError)
from ..adapters.memory_sources import CacheDropper
from ..adapters.ollama_client import OllamaClient, OllamaError
from ..core.decider.decision import Action, Decision
from ..core.decider.policy_settings import PolicySettings
from ..core.memory.memory_reading import MemoryReading
from ..core.ollama.model_metadata import same_model
from ..core.runs.progress import Phase
from ..core.units import to_gib
from .guard_log import GuardLog
from .guard_readings import GuardReadings
from .management_costs import ManagementCosts
from .memory_guard_api import DecisionRecord
from .memory_monitor import MemoryMonitor

_LOG = logging.getLogger("shadowhound_llm_bench.engine.memory_guard")


@dataclass(frozen=True)
class UnloadResult:
    """How an unload went: listed or not, working set before and after, and how it was judged."""

    still_listed: bool
    before_bytes: int
    after_bytes: int
    duration_s: float
    fresh_samples: int  # samples taken after /api/ps dropped the models
    listed_for_s: float  # from sending the unloads until /api/ps dropped them
    judged_over_s: float  # from then until the verdict
    reclaim_s: Optional[float] = None  # until the host got the memory back (None: not yet)
    reclaim_stalled: bool = False  # the models' memory left, the host did not get it back
    available_before_bytes: int = 0
    expected_reclaim_bytes: Optional[int] = None

    def describe(self) -> str:
        """Describe the timing behind a cleanup verdict."""
        if self.still_listed:
            return f"still listed after {self.duration_s:.2f} s"
        reclaim = ("host memory back after " + f"{self.reclaim_s:.2f} s"
                   if self.reclaim_s is not None else "host memory not back yet")
        return (f"/api/ps dropped it after {self.listed_for_s:.2f} s, judged from "
                f"{self.fresh_samples} fresh sample(s) over {self.judged_over_s:.2f} s; "
                f"{reclaim}")


class GuardActions:
    """Carries out unloads, restarts, cache drops and waits on the machine; each is timed."""

    def __init__(self, *, backend: ContainerBackend, client: OllamaClient,
                 monitor: MemoryMonitor, settings: PolicySettings, readings: GuardReadings,
                 log: GuardLog, management_costs: ManagementCosts,
                 cache_dropper: Optional[CacheDropper] = None) -> None:
        self.backend = backend
        self.client = client
        self.monitor = monitor
        self.settings = settings
        self.readings = readings
        self.log = log
        # Unload and restart durations on this machine (the cost-aware policy weighs them).
        self.management_costs = management_costs
        self.cache_dropper = cache_dropper
        self.stop_event = threading.Event()  # set on close and on cancel: every wait ends
        self.cancel_event = threading.Event()
        self.restart_durations_s: List[float] = []
        self.last_drop_entry: Optional[DecisionRecord] = None

    def stop(self) -> None:
        """End every wait now (close)."""
        self.stop_event.set()

    def cancel(self) -> None:
        """End every wait now and remember that the run was canceled."""
        self.cancel_event.set()
        self.stop_event.set()

    def canceled(self) -> bool:
        """Tell whether the run was canceled."""
        return self.cancel_event.is_set()

    def wait(self, model: str, reason: str, seconds: float) -> None:
        """Wait for memory as decided (ends at once on close or cancel)."""
        self.log.phase(Phase.WAITING_FOR_MEMORY, model, reason)
        self.stop_event.wait(seconds)

    def restart(self, model: str, reason: str) -> bool:
        """Restart the container and wait for Ollama; the outcome is recorded with its time."""
        self.log.phase(Phase.RESTARTING, model, f"restarting the Ollama container: {reason}")
        started = time.monotonic()
        record = self.log.record_for(model) if model else None
        try:
            duration = run_until_stopped(
                lambda: self.backend.restart(deadline_s=self.settings.restart_deadline_s),
                self.stop_event, what=f"restart of {self.backend.name}")
        except ContainerControlUnavailable as exc:
            self.log.decision(model, Decision(Action.KEEP, f"restart not possible: {exc}"),
                              self.monitor.latest(), action="restart")
            return False
        except ContainerError as exc:
            entry = self.log.decision(model, Decision(Action.RESTART, f"restart failed: {exc}"),
                                      self.monitor.latest())
            entry.duration_s = time.monotonic() - started
            return False
        self.restart_durations_s.append(duration)
        self.management_costs.add_restart(duration)
        self.log.failed_loads.discard(model)
        reading = self.monitor.sample_now()
        self.readings.empty_working_set_bytes = reading.memory_in_use_bytes
        self.monitor.set_loaded_models(0)
        if record is not None:
            record.restarts += 1
        _LOG.info("container restarted in %.2f s; working set %.3f GiB", duration,
                  to_gib(reading.container.working_set_bytes))
        return True

    def unload(self, models: Sequence[str], for_model: str) -> UnloadResult:
        """
        Unload models and wait until /api/ps drops them and their memory is judged.

        The unloads are sent together (Ollama unloads asynchronously) and waited for once. Once
        /api/ps no longer lists them their runners have exited, so the memory is judged from
        fresh samples: back as soon as the expected share is released, "stayed up" after
        cleanup_samples fresh samples over cleanup_grace_s.
        """
        self.log.phase(Phase.UNLOADING, for_model, f"unloading {', '.join(models)}")
        started = time.monotonic()
        first = self.readings.fresh_reading()
        before = first.memory_in_use_bytes
        expected = int(self.settings.cleanup_min_release_fraction * sum(
            self.readings.footprint_of(m) for m in models))
        self.send_unloads(models)
        return self.watch_release(models, started=started, before=before,
                                  available_before=first.host_available_bytes,
                                  expected=expected, host_known=first.host_total_bytes > 0,
                                  expected_reclaim=reclaim_expected(first, expected))

    def watch_release(self, models: Sequence[str], *, started: float, before: int,
                      available_before: int, expected: int, host_known: bool,
                      gone_already: bool = False,
                      expected_reclaim: Optional[int] = None,
                      grace_s: Optional[float] = None) -> UnloadResult:
        """
        Sample until the models' memory and the host's available memory are back, or judged.

        Reclaim time runs from `started` until MemAvailable rose by the expected release; with
        chosen memory sources the verdict also waits for it (a driver pool may hold the pages).
        """
        wait_for_reclaim = host_known and self.monitor.model_memory is not None
        reclaim_s: Optional[float] = None
        reclaim_target = expected if expected_reclaim is None else expected_reclaim
        grace_s = self.settings.cleanup_grace_s if grace_s is None else grace_s
        end = max(started + self.settings.unload_deadline_s, time.monotonic() + grace_s)
        gone_at: Optional[float] = time.monotonic() if gone_already else None
        gone_stamp_s = time.time() if gone_already else 0.0
        fresh = 0
        still_listed = not gone_already
        after = before
        reclaimed = released = False
        poll_s = min(0.05, self.monitor.period_s)
        now = started
        while not self.stop_event.is_set():  # canceled: the unloads are sent, no one waits
            if gone_at is None:
                # A /api/ps that does not answer proves nothing: ask again until the deadline.
                loaded = self.readings.loaded(deadline_s=max(0.05, end - time.monotonic()))
                if loaded is not None:
                    listed = {m.model for m in loaded}
                    still_listed = any(same_model(m, n) for m in models for n in listed)
                    if not still_listed:
                        gone_at = time.monotonic()
                        gone_stamp_s = time.time()
            sample = self.monitor.sample_now()
            after = sample.memory_in_use_bytes
            now = time.monotonic()
            released = before - after >= expected
            reclaimed = host_known and \
                sample.host_available_bytes - available_before >= reclaim_target
            if reclaimed and reclaim_s is None:
                reclaim_s = now - started
            # Only a sample taken after the runners exited judges the unload: a backend that
            # reads through a slow API hands out its last (older) reading in between.
            if gone_at is not None and sample.container.stamp_s >= gone_stamp_s:
                fresh += 1
                if released and (reclaimed or not wait_for_reclaim):
                    break  # the memory came back: confirmed
                if fresh >= self.settings.cleanup_samples and now - gone_at >= grace_s:
                    break  # it stayed up over the grace: judged from these samples
            if now >= end:
                break
            self.stop_event.wait(poll_s if gone_at is None else min(poll_s, grace_s / 2 or poll_s))
        duration = time.monotonic() - started
        self.management_costs.add_unload(duration)
        return UnloadResult(
            still_listed=still_listed, before_bytes=before, after_bytes=after,
            duration_s=duration, fresh_samples=fresh,
            listed_for_s=(gone_at if gone_at is not None else now) - started,
            judged_over_s=now - gone_at if gone_at is not None else 0.0,
            reclaim_s=reclaim_s, available_before_bytes=available_before,
            expected_reclaim_bytes=reclaim_target,
            reclaim_stalled=wait_for_reclaim and released and not reclaimed)

    def send_unloads(self, models: Sequence[str], deadline_s: Optional[float] = None, *,
                     one_by_one: bool = False) -> List[str]:
        """
        Send every unload at once (a thread each when several); each has its deadline.

        one_by_one sends them in turn (a preemption's short deadlines). Returns what failed.
        """
        deadline_s = min(deadline_s or 10.0, self.settings.unload_deadline_s)
        failed: List[str] = []

        def send(model: str) -> None:
            try:
                self.client.unload(model, deadline_s=deadline_s)
            except OllamaError as exc:
                _LOG.warning("unload of %s failed: %s", model, exc)
                failed.append(f"unload of {model} failed: {exc}")

        if len(models) == 1 or one_by_one:
            for model in models:
                send(model)
            return failed
        threads = [threading.Thread(target=send, args=(m,), name=f"unload-{m}", daemon=True)
                   for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=deadline_s + 1.0)
        return list(failed)

    def can_drop_caches(self) -> bool:
        """Tell whether a dropper is configured and was not refused the privilege."""
        return self.cache_dropper is not None and self.cache_dropper.privileged is not False

    def drop_caches(self, model: str, level: int = 3) -> bool:
        """Carry out a drop_caches decision at its level; a missing privilege is said once."""
        if self.cache_dropper is None:
            return False
        refused_before = self.cache_dropper.privileged is False
        started = time.monotonic()
        outcome = self.cache_dropper.drop(level)
        record = self.log.record_for(model) if model else None
        if outcome.dropped and record is not None:
            record.drop_caches_calls += 1
        if outcome.dropped or not refused_before:
            entry = self.log.decision(model, Decision(Action.KEEP, outcome.message),
                                      self.monitor.sample_now(), action="drop_caches")
            entry.duration_s = time.monotonic() - started
            self.last_drop_entry = entry
        return outcome.dropped


def reclaim_expected(reading: MemoryReading, expected_release: int) -> int:
    """
    How far MemAvailable must rise for the released memory to count as back.

    Page cache inside model memory (mmap'd weights) was counted as available all along, so only
    the rest of the release can show up there.
    """
    in_use = reading.memory_in_use_bytes
    if in_use <= 0:
        return expected_release
    share = max(0.0, 1.0 - reading.cache_in_model_memory_bytes / in_use)
    return int(expected_release * share)


def run_until_stopped(work: Callable[[], float], stop: threading.Event, *, what: str) -> float:
    """
    Run a blocking container call on a thread; ContainerError as soon as stop is set.

    The call itself goes on (a restart finishes on its own); only the waiting ends.
    """
    outcome: Dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="container-call", daemon=True)
    thread.start()
    while thread.is_alive():
        if stop.wait(0.05):
            raise ContainerError(f"{what}: no longer waited for (canceled); it goes on")
        thread.join(0.0)
    if "error" in outcome:
        raise outcome["error"]
    return float(outcome["value"])
