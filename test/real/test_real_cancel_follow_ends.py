"""The real Ollama in a container: a cut load that the server stops is given up within seconds."""

import time

import pytest

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.engine.load_follower import RUNNERS_GONE_S
from shadowhound_llm_bench.engine.guard_building import build_memory_guard

from support.real_ollama import PER_RELEASE, container_server

from real_run_support import run_canceled_during_load

BIG = real_ollama.models.BIG.name  # 804 MB F16: its load takes over a second on this CPU


@pytest.fixture(**PER_RELEASE)
def container(request, docker_client):
    """Start a real server of one release in a container the big model fits in."""
    with container_server(docker_client, request.param, name_prefix='shb-follow',
                          mem_limit_bytes=3 * 2**30) as server:
        yield server, docker_client


def test_a_cut_load_the_server_stopped_is_given_up_once_no_runner_is_left(container, tmp_path):
    server, docker_client = container
    client = OllamaClient(base_url=server.base_url)
    backend = DockerContainer(name=server.container_name, ollama_base_url=server.base_url,
                              docker_client=docker_client)
    settings = preset_settings('default').replace(safety_buffer_bytes=64 * 2**20)
    guard = build_memory_guard(settings=settings, client=client, backend=backend)
    try:
        outcome, bookends = run_canceled_during_load(client, guard, tmp_path, BIG, 'real-follow')
        assert outcome.status == 'canceled'
        assert BIG in bookends.end.followed
        ended = time.monotonic()
        # The server stops the runner of a load whose client left (0.5-0.8 s here): with the
        # container's processes in sight the follower gives the load up, not at its deadline.
        assert bookends.follower.wait(RUNNERS_GONE_S + 10.0)
        assert time.monotonic() - ended < RUNNERS_GONE_S + 10.0
    finally:
        guard.close()
        client.close()
        backend.close()
    (followed,) = bookends.follower.models
    assert followed.outcome == 'not loaded', followed
    assert 'no model runner' in followed.reason
    assert server.runner_pids() == []
