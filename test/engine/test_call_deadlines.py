"""Every call has a deadline sized to what it does; a stalled stream is its own error."""

import os
import subprocess
import sys
import time

import pytest

from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import (
    PS_DEADLINE_S, OllamaClient, OllamaStalled, OllamaTimeout)
from shadowhound_llm_bench.adapters.process_container import ProcessContainer
from shadowhound_llm_bench.common.net import free_port
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import GIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard

HERE = os.path.dirname(os.path.abspath(__file__))
HUNG = os.path.join(HERE, "hung_ollama.py")
# The client's catch-all request timeout: no call may fall back to it.
REQUEST_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def hung_url():
    port = free_port()
    process = subprocess.Popen([sys.executable, HUNG, str(port)], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait(timeout=10)
    process.stdout.close()


@pytest.fixture
def client(hung_url):
    with OllamaClient(base_url=hung_url, request_timeout_s=REQUEST_TIMEOUT_S) as made:
        yield made


def _timed(call):
    started = time.monotonic()
    with pytest.raises(OllamaTimeout) as caught:
        call()
    return caught.value, time.monotonic() - started


def test_a_hung_ps_gives_up_at_its_own_deadline_not_the_request_timeout(client):
    error, took_s = _timed(client.ps)
    assert PS_DEADLINE_S <= took_s + 0.1 and took_s < REQUEST_TIMEOUT_S / 4
    assert "/api/ps" in str(error)


@pytest.mark.parametrize("call", ["show", "tags", "version_ok", "load"])
def test_each_call_takes_its_deadline(client, call):
    if call == "version_ok":
        assert client.version(deadline_s=0.5) == "0.0-hung"  # it answers: no timeout
        return
    calls = {"show": lambda: client.show("m", deadline_s=0.5),
             "tags": lambda: client.tags(deadline_s=0.5),
             "load": lambda: client.load("m", keep_alive="5m", deadline_s=0.5)}
    _, took_s = _timed(calls[call])
    assert took_s < REQUEST_TIMEOUT_S / 4


def test_a_stream_without_a_token_for_the_stall_limit_is_stalled(client):
    with pytest.raises(OllamaStalled) as caught:
        client.generate_stream("stall", "hi", deadline_s=60, stall_s=0.5)
    assert caught.value.kind == "stalled" and "stalled" in str(caught.value)
    assert caught.value.capture.text == "word word "  # what came before the stall is kept


def test_a_stream_that_trickles_forever_ends_at_its_deadline(client):
    with pytest.raises(OllamaTimeout) as caught:
        client.generate_stream("trickle", "hi", deadline_s=1.0, stall_s=0.5)
    assert not isinstance(caught.value, OllamaStalled)
    assert caught.value.capture.chunks >= 2


def test_a_hung_ps_inside_an_unload_does_not_exceed_the_unload_deadline(hung_url, client):
    backend = ProcessContainer(name="hung", argv=[sys.executable, "-c", "import time; "
                                                  "time.sleep(600)"], ollama_base_url=hung_url)
    backend.start(deadline_s=10)
    settings = preset_settings("default", unload_deadline_s=1.5, sample_period_s=0.1)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               host=SimulatedHost(total_bytes=8 * GIB,
                                                  system_reserve_bytes=GIB))
    try:
        started = time.monotonic()
        result = guard.actions.unload(("m",), "m")
        took_s = time.monotonic() - started
    finally:
        guard.close()
        backend.close()
    assert result.still_listed  # /api/ps never said it was gone
    assert took_s < settings.unload_deadline_s + PS_DEADLINE_S / 2
