"""Cancel ends a run in every phase (load, stream, unload wait, restart wait, memory wait)."""

import os
import socket
import sys
import threading
import time

import httpx
import pytest

from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.process_container import ProcessContainer
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import GIB, MIB
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import read_records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Far longer than a cancel may take: a run still waiting this long did not honour it.
LONG_WAIT_S = 60.0
# Starts the simulator; sleeps first when the file named by argv[1] holds seconds.
SLOW_START = """
import os, sys, time
if os.path.exists(sys.argv[1]):
    time.sleep(float(open(sys.argv[1]).read()))
os.execv(sys.executable, [sys.executable, "-m", "shadowhound_llm_bench.sim"] + sys.argv[2:])
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sim_backend(tmp_path):
    """Run the thor simulator as a local process container; slow_start() slows restarts."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ProcessContainer(
        name="cancel-sim", ollama_base_url=url, cwd=REPO,
        argv=[sys.executable, "-c", SLOW_START, str(tmp_path / "start-delay-s"),
              "--scenario", "thor", "--port", str(port), "--quiet"])
    backend.start(deadline_s=30)
    backend.slow_start = lambda: (tmp_path / "start-delay-s").write_text(str(LONG_WAIT_S))
    try:
        yield backend, url
    finally:
        backend.close()


class CancelingRun:
    """A guarded run on its own thread, canceled when a progress event matches."""

    def __init__(self, url, backend, tmp_path, *, preset="adaptive", cancel_when,
                 on_event=None, cancel_after_s=0.3, **overrides):
        self.client = OllamaClient(base_url=url)
        settings = preset_settings(preset, memory_scale=1 / 64, num_ctx=4096,
                                   sample_period_s=0.1, safety_buffer_bytes=64 * MIB,
                                   restart_deadline_s=LONG_WAIT_S * 2, **overrides)
        self.guard = build_memory_guard(
            settings=settings, memory_scale=1 / 64, client=self.client, backend=backend,
            host=SimulatedHost(total_bytes=2 * GIB, system_reserve_bytes=160 * MIB),
            footprint_cache_path=str(tmp_path / "footprints.json"))
        self.cancel = CancelToken()
        self.canceled_at = None
        self.events = []

        def progress(event):
            self.events.append(event)
            if on_event is not None:
                on_event(event)
            if self.canceled_at is None and cancel_when(event):
                self.canceled_at = time.monotonic()
                threading.Timer(cancel_after_s, self.cancel.cancel,
                                args=("test cancel",)).start()

        self.runner = BenchmarkRunner(
            client=self.client, guard=self.guard, options=RunOptions(repetitions=1),
            suite=load_suite("robot_mission"), results_root=tmp_path, run_name="cancel",
            on_progress=progress, cancel=self.cancel)

    def run(self, models):
        try:
            outcome = self.runner.run(models)
        finally:
            self.guard.close()
            self.client.close()
        return outcome, time.monotonic() - self.canceled_at


def _records(outcome, kind):
    records, _ = read_records(outcome.reports.jsonl_log)
    return [r for r in records if r["type"] == kind]


def test_cancel_during_a_load_cuts_it(sim_backend, tmp_path):
    backend, url = sim_backend
    run = CancelingRun(url, backend, tmp_path,
                       cancel_when=lambda e: e.phase == Phase.LOADING and "attempt" in e.status)
    outcome, after_cancel_s = run.run(["llama3.3:70b"])  # ~3 s to load here
    assert outcome.status == "canceled"
    model = outcome.summary.models[0]
    assert model.status == "canceled" and "during the load" in model.reason
    assert [r["error_kind"] for r in _records(outcome, "load")] == ["canceled"]
    assert after_cancel_s < LONG_WAIT_S


def test_cancel_during_a_stream_cuts_it_and_keeps_the_partial_answer(sim_backend, tmp_path):
    backend, url = sim_backend
    httpx.post(f"{url}/sim/faults", timeout=5,
               json={"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}})
    run = CancelingRun(url, backend, tmp_path, cancel_after_s=1.5,  # a few tokens came
                       cancel_when=lambda e: e.phase == Phase.WARMUP)
    outcome, after_cancel_s = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert outcome.summary.models[0].status == "canceled"
    tests = _records(outcome, "test")
    assert [t["error_kind"] for t in tests] == ["canceled"]
    assert tests[0]["metrics"]["token_chunks"] >= 1  # what arrived before the cut is kept
    assert after_cancel_s < LONG_WAIT_S


def test_cancel_during_the_unload_wait(sim_backend, tmp_path):
    backend, url = sim_backend

    def hang_unloads(event):
        if event.phase == Phase.UNLOADING and "unloading" in event.status:
            httpx.post(f"{url}/sim/faults", timeout=5,
                       json={"hang_s": {"deepseek-r1:7b": LONG_WAIT_S}})
    run = CancelingRun(url, backend, tmp_path, preset="default", on_event=hang_unloads,
                       unload_deadline_s=LONG_WAIT_S * 2,
                       cancel_when=lambda e: e.phase == Phase.UNLOADING)
    outcome, after_cancel_s = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert after_cancel_s < LONG_WAIT_S


def test_cancel_during_the_restart_wait(sim_backend, tmp_path):
    backend, url = sim_backend
    backend.slow_start()
    run = CancelingRun(url, backend, tmp_path, preset="conservative",
                       cancel_when=lambda e: e.phase == Phase.RESTARTING)
    outcome, after_cancel_s = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert outcome.summary.models[0].status == "canceled"
    assert after_cancel_s < LONG_WAIT_S


def test_cancel_during_the_memory_wait(sim_backend, tmp_path):
    backend, url = sim_backend
    backend.set_memory_limit(200 * MIB)  # llama3.3:70b (~670 MiB here) never fits
    run = CancelingRun(url, backend, tmp_path, preset="default",
                       skip_models_that_never_fit=False, memory_wait_s=LONG_WAIT_S * 2,
                       restart_before_models_over_bytes=None,
                       cancel_when=lambda e: e.phase == Phase.WAITING_FOR_MEMORY)
    outcome, after_cancel_s = run.run(["llama3.3:70b"])
    assert outcome.status == "canceled"
    assert any(e.phase == Phase.WAITING_FOR_MEMORY for e in run.events)
    assert after_cancel_s < LONG_WAIT_S
