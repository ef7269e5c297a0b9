"""The real Ollama in a container: a cut load that the server stops is given up within seconds."""

import os
import threading
import time
import uuid

import pytest

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.load_follower import RUNNERS_GONE_S
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

from real_ollama_support import NO_REAL_OLLAMA, REAL_OLLAMA_VERSIONS

BIG = real_ollama.models.BIG.name  # 804 MB F16: its load takes over a second on this CPU


@pytest.fixture(params=REAL_OLLAMA_VERSIONS or [None], ids=lambda v: f'ollama-{v}')
def container(request):
    """Start a real server of one release in a container the big model fits in."""
    if request.param is None:
        pytest.skip(NO_REAL_OLLAMA)
    docker = pytest.importorskip('docker')
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # no engine here
        pytest.skip(f'no Docker engine reachable at {os.environ.get("DOCKER_HOST")}: {exc}')
    server = real_ollama.start_container_server(
        client, real_ollama.find_dist(request.param),
        name=f'shb-follow-{request.param}-{uuid.uuid4().hex[:6]}', mem_limit_bytes=3 * 2**30)
    try:
        real_ollama.ensure_models(server, real_ollama.STANDARD_SHAPES)
        yield server, client
    finally:
        server.stop()
        client.close()


def test_a_cut_load_the_server_stopped_is_given_up_once_no_runner_is_left(container, tmp_path):
    server, docker_client = container
    client = OllamaClient(base_url=server.base_url)
    backend = DockerContainer(name=server.container_name, ollama_base_url=server.base_url,
                              docker_client=docker_client)
    settings = preset_settings('default').replace(safety_buffer_bytes=64 * 2**20)
    guard = build_memory_guard(settings=settings, client=client, backend=backend)
    cancel = CancelToken()

    def progress(event):
        if event.phase == Phase.LOADING and 'attempt' in event.status:
            threading.Timer(0.3, cancel.cancel, args=('test cancel',)).start()

    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(repetitions=1),
                             suite=load_suite('robot_mission'), results_root=tmp_path,
                             run_name='real-follow', on_progress=progress, cancel=cancel)
    try:
        outcome, bookends = run_between_bookends(guard, client, lambda: runner.run([BIG]),
                                                 [BIG])
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
