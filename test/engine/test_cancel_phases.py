"""Cancel ends a run in every phase (load, stream, unload wait, restart wait, memory wait)."""


import httpx
import pytest

from shadowhound_llm_bench.adapters.container_backend import ContainerError
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.reports.jsonl_log import read_records

from support.canceling_runs import CancelingRun
from support.simulators import sim_process_container

# Far longer than a cancel may take: a run still waiting this long did not honour it.
LONG_WAIT_S = 60.0


@pytest.fixture
def sim_backend(tmp_path):
    """Run the thor simulator as a local process container; slow_start() slows restarts."""
    delay = tmp_path / "start-delay-s"
    with sim_process_container("cancel-sim", "thor", start_delay_file=str(delay)) as started:
        started[0].slow_start = lambda: delay.write_text(str(LONG_WAIT_S))
        yield started


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


def test_a_restart_still_under_way_after_close_starts_nothing(sim_backend):
    """A cancel during the restart wait: the owner closes the backend, the restart goes on."""
    backend, url = sim_backend
    backend.close()
    with pytest.raises(ContainerError, match="closed"):
        backend.restart(deadline_s=5)
    assert backend.pid is None
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/api/version", timeout=2)
