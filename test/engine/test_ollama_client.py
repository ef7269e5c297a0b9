"""The Ollama client classifies every failure and never returns one as a success."""

import pytest

from shadowhound_llm_bench.adapters.ollama_client import (
    ModelNotFound, OllamaClient, OllamaEmptyResponse, OllamaHTTPError, OllamaStreamError,
    OllamaTimeout, OllamaUnavailable,
)


def test_good_stream_is_timed_on_the_client(scripted):
    with OllamaClient(base_url=scripted.url) as client:
        capture = client.generate_stream("good", "q", deadline_s=5)
    assert capture.text == "Answer: D"
    assert len(capture.token_chunk_times_s) == 3
    assert capture.started_s < capture.first_token_s <= capture.ended_s
    assert capture.final["eval_count"] == 3 and "response" not in capture.final


@pytest.mark.parametrize("model, error, kind", [
    ("stream_error", OllamaStreamError, "stream_error"),
    ("empty", OllamaEmptyResponse, "empty_output"),
    ("http_503", OllamaHTTPError, "http_error"),
    ("missing", ModelNotFound, "http_error"),
])
def test_failures_raise_their_kind(scripted, model, error, kind):
    with OllamaClient(base_url=scripted.url) as client:
        with pytest.raises(error) as info:
            client.generate_stream(model, "q", deadline_s=5)
    assert info.value.kind == kind


def test_a_stream_closed_without_its_final_chunk_is_an_early_end_not_a_failure(scripted):
    with OllamaClient(base_url=scripted.url) as client:
        capture = client.generate_stream("no_done", "q", deadline_s=5)
    assert capture.ended_early and capture.text == "A" and capture.final == {}
    assert len(capture.token_chunk_times_s) == 1


def test_error_line_keeps_what_arrived_before_it(scripted):
    with OllamaClient(base_url=scripted.url) as client:
        with pytest.raises(OllamaStreamError, match="runner process has terminated") as info:
            client.generate_stream("stream_error", "q", deadline_s=5)
    assert info.value.capture.text == "Ans"


def test_a_stalled_stream_times_out(scripted):
    with OllamaClient(base_url=scripted.url, request_timeout_s=0.5) as client:
        with pytest.raises(OllamaTimeout):
            client.generate_stream("stall", "q", deadline_s=5)


def test_model_not_found_carries_status_and_message(scripted):
    with OllamaClient(base_url=scripted.url) as client:
        with pytest.raises(ModelNotFound) as info:
            client.show("missing")
    assert info.value.status == 404 and "not found" in info.value.message


def test_no_server_is_unavailable_and_readiness_has_a_deadline():
    with OllamaClient(base_url="http://127.0.0.1:9", connect_timeout_s=0.5) as client:
        with pytest.raises(OllamaUnavailable):
            client.tags()
        with pytest.raises(OllamaTimeout, match="not ready within"):
            client.wait_until_ready(deadline_s=0.3, poll_s=0.1)


def test_simulator_metadata_load_and_unload(clean_sim):
    with OllamaClient(base_url=clean_sim.url) as client:
        assert client.wait_until_ready(deadline_s=5)
        names = [t["name"] for t in client.tags()]
        assert "qwen2.5:0.5b" in names
        assert client.show("qwen2.5:0.5b")["details"]["quantization_level"] == "Q4_K_M"
        reply = client.load("qwen2.5:0.5b", keep_alive="1m", options={"num_ctx": 4096},
                            deadline_s=30)
        # As Ollama: a load answers done_reason "load" and no durations (the client times it).
        assert reply["done_reason"] == "load" and "load_duration" not in reply
        assert [m["name"] for m in client.ps()] == ["qwen2.5:0.5b"]
        client.unload("qwen2.5:0.5b")
        with pytest.raises(ModelNotFound):
            client.show("nosuch:1b")


def test_bad_base_url_is_rejected():
    with pytest.raises(ValueError, match="http"):
        OllamaClient(base_url="localhost:11434")
