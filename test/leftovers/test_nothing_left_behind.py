"""After a cancel in any phase Ollama holds nothing the run asked for, and every report says so."""

import json
import time

import httpx
import pytest

from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.decider.residency import left_loaded, left_loaded_text
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends

from support import ollama_ps
from support.canceling_runs import CancelingRun
from support.ollama_ps import listed
from support.simulators import sim_process_container

EMPTY_WITHIN_S = 12.0  # after the result: Ollama holds nothing of the run by then, for good
LONG_WAIT_S = 60.0


@pytest.fixture
def thor(tmp_path):
    """Start the thor simulator as a local process container; slow_start() slows restarts."""
    delay = tmp_path / "start-delay-s"
    with sim_process_container("leftovers-sim", "thor", start_delay_file=str(delay)) as started:
        started[0].slow_start = lambda s: delay.write_text(str(s))
        yield started


def wait_empty(url, deadline_s=EMPTY_WITHIN_S):
    """Watch /api/ps for deadline_s; return when it became empty for good, fail if not empty."""
    return ollama_ps.wait_empty(url, deadline_s)


class CanceledRun(CancelingRun):
    """A guarded run between its bookends on a thread, canceled when an event matches."""

    def __init__(self, url, backend, tmp_path, **kwargs):
        super().__init__(url, backend, tmp_path, run_name="leftovers", **kwargs)

    def run(self, models):
        """Run the models between the run's bookends; (outcome, bookends)."""
        return self.run_between_bookends(models)


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
