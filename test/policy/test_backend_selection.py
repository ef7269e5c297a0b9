"""container.backend auto: a container of the name, else an active systemd unit, else API only."""

import dataclasses
import os
import sys
import uuid

import pytest

from support.containers import PODMAN_HOST
from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.backend_selection import (
    BackendSelectionError, select_backend)
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.adapters.process_container import ProcessContainer
from shadowhound_llm_bench.adapters.systemd_unit import SystemdUnit
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from test_systemd_unit import service  # noqa: F401  (the systemd stand-in fixture)

NO_SYSTEMCTL = ["/nonexistent/systemctl"]


@pytest.fixture
def podman_visible(monkeypatch):
    """Let auto look at the test's Podman socket too (it looks at CONTAINER_HOST)."""
    monkeypatch.setenv("CONTAINER_HOST", PODMAN_HOST)


def test_auto_takes_the_container_of_that_name_and_says_why(tiny_container, docker_client,
                                                            podman_visible):
    name, url, container = tiny_container
    with OllamaClient(base_url=url) as client:
        backend = select_backend(kind="auto", name=name, ollama_base_url=url,
                                 api_client=client, systemctl=NO_SYSTEMCTL)
        try:
            assert isinstance(backend, DockerContainer)
            # DOCKER_HOST may itself name the Podman socket: then it is found in Docker's turn.
            assert backend.engine in ("docker", docker_client.engine_name)
            assert backend.container_id == container.id
            assert f"auto chose {backend.engine} container {name!r}" in \
                backend.selection_reason
            assert container.id[:12] in backend.selection_reason  # describe(): the ID
        finally:
            backend.close()


def test_auto_takes_an_active_systemd_unit_when_no_container_has_the_name(service):  # noqa
    name, url, systemctl, _ = service
    with OllamaClient(base_url=url) as client:
        backend = select_backend(kind="auto", name=name, ollama_base_url=url,
                                 api_client=client, systemctl=systemctl)
    assert isinstance(backend, SystemdUnit)
    reason = backend.selection_reason
    assert f"auto chose systemd unit {name}.service (running)" in reason
    assert f"no container named {name!r}" in reason or "no engine answers" in reason
    assert backend.cgroup_directory in reason


def test_auto_falls_back_to_the_api_only_and_lists_what_it_passed_over(tmp_path):
    url = "http://127.0.0.1:9"
    name = f"shb-nothing-{uuid.uuid4().hex[:8]}"
    with OllamaClient(base_url=url) as client:
        backend = select_backend(kind="auto", name=name, ollama_base_url=url,
                                 api_client=client, systemctl=NO_SYSTEMCTL)
    assert isinstance(backend, ApiOnlyContainer) and not backend.measures_memory
    reason = backend.selection_reason
    assert reason.startswith(f"backend auto chose only the Ollama API at {url} because: ")
    assert "systemd cannot be asked" in reason
    assert "docker" in reason  # the engine it looked at, found or not


def test_an_explicit_backend_that_cannot_be_used_is_a_clear_error(service):  # noqa: F811
    _, url, systemctl, _ = service
    with OllamaClient(base_url=url) as client:
        with pytest.raises(BackendSelectionError, match="no systemd unit shb-absent.service"):
            select_backend(kind="systemd", name="shb-absent", ollama_base_url=url,
                           api_client=client, systemctl=systemctl)
        with pytest.raises(BackendSelectionError, match="cannot be selected"):
            select_backend(kind="kubernetes", name="x", ollama_base_url=url,
                           api_client=client)


def test_the_process_backend_will_not_start_a_second_ollama_beside_a_service(service):  # noqa
    _, url, _, _ = service
    backend = ProcessContainer(name="second", ollama_base_url=url,
                               argv=[sys.executable, "-c", "pass"], refuse_when_answering=True)
    with pytest.raises(Exception, match="another Ollama already answers"):
        backend.start(deadline_s=5)


@pytest.fixture
def small_sim():
    from shadowhound_llm_bench.sim.launcher import start_local_simulator
    sim = start_local_simulator(scenario="small")
    yield sim
    sim.stop()


def test_api_only_reports_footprints_and_cleanup_as_unverified(small_sim, tmp_path):
    client = OllamaClient(base_url=small_sim.base_url)
    backend = select_backend(kind="api_only", name="ollama", ollama_base_url=client.base_url,
                             api_client=client, memory_scale=1 / 8)
    settings = preset_settings("default", memory_scale=1 / 8, num_ctx=4096,
                               sample_period_s=0.2, safety_buffer_bytes=16 * 1024 * 1024)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=1 / 8,
                               footprint_cache_path=str(tmp_path / "footprints.json"))
    suite = load_suite("robot_mission")
    suite = dataclasses.replace(suite, tasks=suite.tasks[:1])
    runner = BenchmarkRunner(client=client, guard=guard, suite=suite, results_root=tmp_path,
                             options=RunOptions(repetitions=1, warmup=False, num_predict=8))
    try:
        outcome = runner.run(["qwen2.5:0.5b"])
    finally:
        guard.close()
        client.close()
    record = guard.record("qwen2.5:0.5b")
    assert record.unloads == 1
    assert record.cleanup_successful is None  # never "successful": nothing was measured
    assert record.measured_footprint_bytes is None
    assert "footprints and cleanup unverified" in record.unverified
    assert not os.path.exists(tmp_path / "footprints.json")  # nothing circular is cached
    (cleanup,) = [d for d in record.decisions if d.action == "cleanup"]
    assert cleanup.reason.startswith("cleanup unverified")
    markdown = outcome.reports.markdown.read_text()
    assert "| unverified |" in markdown and "Not measured: footprints and cleanup" in markdown
    assert "backend api_only: only the Ollama API" in markdown  # where Ollama ran
    messages = pytest.importorskip("shadowhound_llm_bench.ros.messages")
    action = pytest.importorskip("shadowhound_llm_bench_interfaces.action")
    msgs = pytest.importorskip("shadowhound_llm_bench_interfaces.msg")
    result = messages.result_msg(action.RunBenchmark.Result, msgs.ModelResult, outcome)
    assert "not measured: footprints and cleanup unverified" in result.summary
