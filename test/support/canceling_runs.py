"""
A guarded benchmark run over the thor simulator, canceled when a progress event matches.

The engine tests time how long a cancel takes in each phase; the leftovers tests run it between
its bookends and check what Ollama still holds afterwards.
"""

import threading
import time

from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.units import GIB, MIB
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner


class CancelingRun:
    """A guarded run (1/64 scale) canceled cancel_after_s after cancel_when(event) first holds."""

    def __init__(self, url, backend, tmp_path, *, cancel_when, run_name='cancel',
                 preset='adaptive', cancel_after_s=0.3, on_event=None,
                 restart_deadline_s=120.0, **overrides):
        self.url = url
        self.client = OllamaClient(base_url=url)
        settings = preset_settings(preset, memory_scale=1 / 64, num_ctx=4096,
                                   sample_period_s=0.1, safety_buffer_bytes=64 * MIB,
                                   restart_deadline_s=restart_deadline_s, **overrides)
        self.guard = build_memory_guard(
            settings=settings, memory_scale=1 / 64, client=self.client, backend=backend,
            host=SimulatedHost(total_bytes=2 * GIB, system_reserve_bytes=160 * MIB),
            footprint_cache_path=str(tmp_path / 'footprints.json'))
        self.cancel = CancelToken()
        self.matched_at = None  # when cancel_when first held
        self.cancel_after_s = cancel_after_s
        self.events = []

        def progress(event):
            self.events.append(event)
            if on_event is not None:
                on_event(event)
            if self.matched_at is None and cancel_when(event):
                self.matched_at = time.monotonic()
                threading.Timer(cancel_after_s, self.cancel.cancel,
                                args=('test cancel',)).start()

        self.runner = BenchmarkRunner(
            client=self.client, guard=self.guard, options=RunOptions(repetitions=1),
            suite=load_suite('robot_mission'), results_root=tmp_path, run_name=run_name,
            on_progress=progress, cancel=self.cancel)

    @property
    def canceled_at(self):
        """Return when the cancel fires (monotonic), or None before cancel_when held."""
        return None if self.matched_at is None else self.matched_at + self.cancel_after_s

    def run(self, models):
        """Run the models; (outcome, seconds from cancel_when's match to the run's end)."""
        try:
            outcome = self.runner.run(models)
        finally:
            self.close()
        return outcome, time.monotonic() - self.matched_at

    def run_between_bookends(self, models):
        """Run the models between the run's bookends; (outcome, bookends)."""
        try:
            return run_between_bookends(
                self.guard, self.client, lambda: self.runner.run(models), models)
        finally:
            self.close()

    def close(self):
        """Close the guard and the client."""
        self.guard.close()
        self.client.close()
