"""After a cancel in any phase Ollama holds nothing the run asked for, and every report says so."""

import json
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
from shadowhound_llm_bench.core.decider.residency import left_loaded, left_loaded_text
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import GIB, MIB
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMPTY_WITHIN_S = 12.0  # after the result: Ollama holds nothing of the run by then, for good
LONG_WAIT_S = 60.0
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
def thor(tmp_path):
    """Start the thor simulator as a local process container; slow_start() slows restarts."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ProcessContainer(
        name="leftovers-sim", ollama_base_url=url, cwd=REPO,
        argv=[sys.executable, "-c", SLOW_START, str(tmp_path / "start-delay-s"),
              "--scenario", "thor", "--port", str(port), "--quiet"])
    backend.start(deadline_s=30)
    backend.slow_start = lambda s: (tmp_path / "start-delay-s").write_text(str(s))
    try:
        yield backend, url
    finally:
        backend.close()


def listed(url):
    """Names in /api/ps (None while the server does not answer)."""
    try:
        reply = httpx.get(f"{url}/api/ps", timeout=2.0)
        return [m["name"] for m in reply.json()["models"]]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def wait_empty(url, deadline_s=EMPTY_WITHIN_S):
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
        pytest.fail(f"/api/ps still lists {names} {deadline_s:.0f} s after the result")
    return empty_since


class CanceledRun:
    """A guarded run between its bookends on a thread, canceled when an event matches."""

    def __init__(self, url, backend, tmp_path, *, cancel_when, preset="adaptive",
                 cancel_after_s=0.3, on_event=None, **overrides):
        self.url = url
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

        def progress(event):
            if on_event is not None:
                on_event(event)
            if self.canceled_at is None and cancel_when(event):
                self.canceled_at = time.monotonic() + cancel_after_s
                threading.Timer(cancel_after_s, self.cancel.cancel,
                                args=("test cancel",)).start()

        self.runner = BenchmarkRunner(
            client=self.client, guard=self.guard, options=RunOptions(repetitions=1),
            suite=load_suite("robot_mission"), results_root=tmp_path, run_name="leftovers",
            on_progress=progress, cancel=self.cancel)

    def run(self, models):
        try:
            outcome, bookends = run_between_bookends(
                self.guard, self.client, lambda: self.runner.run(models), models)
        finally:
            self.guard.close()
            self.client.close()
        return outcome, bookends


def assert_reports_agree(outcome, bookends):
    """results.json, summary.md and the console line say what the run's end found."""
    end = bookends.end.to_dict()
    results = json.loads(outcome.reports.results_json.read_text())
    assert results["residency"]["end"]["still_loaded"] == end["still_loaded"]
    assert results["residency"]["end"]["cleanup"] == end["cleanup"]
    summary = outcome.reports.markdown.read_text()
    for model, reason in left_loaded(end):
        assert f"- Still loaded: {model} — {reason}" in summary
    if not left_loaded(end):
        assert "- Still loaded: none (checked in /api/ps)" in summary
    assert f"- Cleanup: {end['cleanup']}" in summary
    assert ("cleanup " + end["cleanup"]) in left_loaded_text(end)


def followed_to_the_end(bookends, outcome):
    """Wait for the follower; the reports then carry how each followed model ended."""
    follower = bookends.follower
    if follower is None:
        return []
    assert follower.wait(LONG_WAIT_S)
    results = json.loads(outcome.reports.results_json.read_text())
    return results["residency"]["followed"]["models"]


def test_a_load_canceled_midway_is_unloaded_once_it_ends(thor, tmp_path):
    backend, url = thor
    run = CanceledRun(url, backend, tmp_path,
                      cancel_when=lambda e: e.phase == Phase.LOADING and "attempt" in e.status)
    outcome, bookends = run.run(["llama3.3:70b"])  # ~3 s to load here: canceled ~0.3 s in
    assert outcome.status == "canceled"
    assert_reports_agree(outcome, bookends)
    # The load was still going in the simulator: followed, not reported gone.
    assert bookends.end.followed == ["llama3.3:70b"]
    assert bookends.end.cleanup == "followed"
    assert [m for m, _ in left_loaded(bookends.end.to_dict())] == ["llama3.3:70b"]
    wait_empty(url)
    followed = followed_to_the_end(bookends, outcome)
    assert [(f["model"], f["outcome"]) for f in followed] == [("llama3.3:70b", "unloaded")]
    time.sleep(1.0)  # nothing loads it again
    assert listed(url) == []


def test_a_stream_canceled_midway_leaves_nothing(thor, tmp_path):
    backend, url = thor
    httpx.post(f"{url}/sim/faults", timeout=5,
               json={"decode_slowdown": {"after_cycles": 0, "fraction": 0.99}})
    run = CanceledRun(url, backend, tmp_path, cancel_after_s=1.0,
                      cancel_when=lambda e: e.phase == Phase.WARMUP)
    outcome, bookends = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert_reports_agree(outcome, bookends)
    # Whatever is named still loaded is really followed (no "still listed" from a quick look).
    assert all(m in bookends.end.followed for m, _ in bookends.end.still_loaded)
    wait_empty(url)
    for item in followed_to_the_end(bookends, outcome):
        assert item["outcome"] == "unloaded"


def test_an_unload_wait_canceled_leaves_nothing(thor, tmp_path):
    backend, url = thor

    def slow_unloads(event):
        if event.phase == Phase.UNLOADING and "unloading" in event.status:
            httpx.post(f"{url}/sim/faults", timeout=5, json={"hang_s": {"deepseek-r1:7b": 3.0}})
    run = CanceledRun(url, backend, tmp_path, preset="default", on_event=slow_unloads,
                      unload_deadline_s=LONG_WAIT_S, cancel_after_s=0.3,
                      cancel_when=lambda e: e.phase == Phase.UNLOADING)
    outcome, bookends = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert_reports_agree(outcome, bookends)
    wait_empty(url)
    followed_to_the_end(bookends, outcome)


def test_a_restart_wait_canceled_leaves_nothing(thor, tmp_path):
    backend, url = thor
    backend.slow_start(3.0)  # the conservative preset restarts before each model
    run = CanceledRun(url, backend, tmp_path, preset="conservative",
                      cancel_when=lambda e: e.phase == Phase.RESTARTING)
    outcome, bookends = run.run(["deepseek-r1:7b"])
    assert outcome.status == "canceled"
    assert_reports_agree(outcome, bookends)
    wait_empty(url, deadline_s=EMPTY_WITHIN_S + 3.0)  # the server is back within its start delay
    followed_to_the_end(bookends, outcome)


def test_the_idle_owner_unloads_what_its_run_left_but_not_the_operators_model(thor, tmp_path):
    from shadowhound_llm_bench.core.decider.policy import MemoryPolicy
    from shadowhound_llm_bench.engine.own_leftovers import OwnLeftovers
    backend, url = thor
    # The operator's model, loaded before the run and kept (keep_models_found_loaded).
    httpx.post(f"{url}/api/generate", timeout=30,
               json={"model": "deepseek-r1:7b", "prompt": "", "keep_alive": "5m"})
    run = CanceledRun(url, backend, tmp_path, cancel_after_s=0.2,
                      cancel_when=lambda e: e.phase == Phase.LOADING and "attempt" in e.status)
    try:
        outcome, bookends = run_between_bookends(
            run.guard, run.client, lambda: run.runner.run(["phi4:14b"]), ["phi4:14b"],
            keep_others=True)
    finally:
        run.guard.close()
        run.client.close()
    assert outcome.status == "canceled"
    assert bookends.start.still_loaded == ["deepseek-r1:7b"]
    # The run's own follower gives up at once: the load it cut ends with nobody watching.
    bookends.follower.stop()
    assert bookends.follower.wait(10.0)
    deadline = time.monotonic() + 20.0
    while "phi4:14b" not in (listed(url) or []) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(listed(url)) == ["deepseek-r1:7b", "phi4:14b"]
    owner = OwnLeftovers(base_url=url, policy=lambda: MemoryPolicy(run.guard.settings),
                         busy=lambda: False)
    owner.hand_over(bookends)
    assert owner.names() == ["phi4:14b"]
    owner.on_listed(listed(url))  # what the idle node's loaded-models watch hands it
    assert owner.wait(20.0)
    assert listed(url) == ["deepseek-r1:7b"]
    owner.on_listed(listed(url))
    assert owner.names() == []  # seen gone: a later load of it by someone else is left alone
