"""Container backends, host memory and the monitor against real containers and processes."""

import os
from types import SimpleNamespace

import httpx
import psutil
import pytest

from shadowhound_llm_bench.adapters.container_backend import ContainerNotFound
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.host_memory import ProcMeminfoHost
from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.process_container import ProcessContainer
from shadowhound_llm_bench.core.decider.memory_budget import BudgetInputs, model_budget_bytes
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.footprint_cache import FootprintCache
from shadowhound_llm_bench.engine.memory_monitor import MemoryMonitor

from support.waiting import poll_until

HOLD = 64 * MIB


def test_docker_working_set_from_cgroup_files_matches_the_stats_api(tiny_container,
                                                                    docker_client):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client)
    try:
        assert backend.sampling == "cgroup"
        empty = backend.sample()
        assert empty.state is ContainerState.RUNNING and empty.limit_bytes == 256 * MIB
        httpx.post(f"{url}/hold/{HOLD}", timeout=10)
        held = backend.sample()
        assert held.working_set_bytes - empty.working_set_bytes >= 0.9 * HOLD
        assert held.usage_bytes >= held.working_set_bytes
        via_api = backend.read_api_sample()
        assert abs(via_api.working_set_bytes - held.working_set_bytes) < 8 * MIB
        assert via_api.limit_bytes == 256 * MIB
    finally:
        backend.close()


def test_docker_api_sampling_runs_on_a_background_thread(tiny_container, docker_client):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client,
                              sampling="api", api_period_s=0.2)
    try:
        assert backend.sampling == "api"
        first = backend.sample()
        httpx.post(f"{url}/hold/{HOLD}", timeout=10)
        grown = poll_until(lambda: backend.sample().working_set_bytes
                           >= first.working_set_bytes + 0.9 * HOLD, timeout_s=15)
        assert grown, "the stats thread never saw the memory rise"
    finally:
        backend.close()
    assert not backend._thread.is_alive()


def test_docker_restart_waits_for_ollama_and_returns_the_memory(tiny_container, docker_client):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client)
    try:
        httpx.post(f"{url}/hold/{HOLD}", timeout=10)
        before = backend.sample().working_set_bytes
        took_s = backend.restart(deadline_s=30)
        assert 0 < took_s < 30
        assert httpx.get(f"{url}/api/version", timeout=2).json()["version"] == "0.0.0-tiny"
        assert backend.state() is ContainerState.RUNNING
        after = backend.sample()
        assert after.state is ContainerState.RUNNING
        assert before - after.working_set_bytes >= 0.9 * HOLD
    finally:
        backend.close()


def test_a_stopped_container_keeps_its_limit_so_the_budget_does_not_jump(tiny_container,
                                                                         docker_client):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client)
    container = docker_client.containers.get(name)
    try:
        assert backend.sample().limit_bytes == 256 * MIB
        container.stop(timeout=2)
        stopped = backend.sample()
        assert stopped.state is ContainerState.STOPPED
        assert stopped.working_set_bytes == 0
        assert stopped.limit_bytes == 256 * MIB
    finally:
        container.start()
        backend.close()


def test_a_cgroup_not_limited_yet_reads_with_the_configured_limit(tiny_container,
                                                                  docker_client, tmp_path):
    # While Docker recreates a restarting container's cgroup, its files can exist before the
    # limit is written: such a reading must not lift the budget to "no limit".
    name, url, _ = tiny_container
    container_id = docker_client.containers.get(name).id
    cgroup = tmp_path / "memory" / "docker" / container_id
    cgroup.mkdir(parents=True)
    (cgroup / "memory.usage_in_bytes").write_text(str(40 * MIB))
    (cgroup / "memory.stat").write_text(f"total_inactive_file {8 * MIB}\n")
    (cgroup / "memory.limit_in_bytes").write_text(str(0x7FFFFFFFFFFFF000))
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client,
                              cgroup_root=str(tmp_path))
    try:
        sample = backend.sample()
        assert sample.working_set_bytes == 32 * MIB
        assert sample.limit_bytes == 256 * MIB
    finally:
        backend.close()


def test_docker_memory_limit_can_be_set_to_the_budget(tiny_container, docker_client):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client)
    try:
        backend.set_memory_limit(200 * MIB)
        assert backend.sample().limit_bytes == 200 * MIB
        with pytest.raises(ValueError):
            backend.set_memory_limit(0)
    finally:
        backend.close()


def test_a_missing_container_is_a_clear_error(docker_client):
    with pytest.raises(ContainerNotFound, match="policy-test-nothing"):
        DockerContainer(name="policy-test-nothing", ollama_base_url="http://127.0.0.1:9",
                        docker_client=docker_client)


def test_process_backend_measures_the_tree_and_restarts(tiny_process):
    argv, url = tiny_process
    backend = ProcessContainer(name="tiny", argv=argv, ollama_base_url=url)
    try:
        backend.start(deadline_s=15)
        first_pid = backend.pid
        empty = backend.sample()
        assert empty.state is ContainerState.RUNNING and empty.working_set_bytes > 0
        httpx.post(f"{url}/hold/{HOLD}", timeout=10)
        held = backend.sample()
        assert held.working_set_bytes - empty.working_set_bytes >= 0.9 * HOLD
        backend.set_memory_limit(512 * MIB)
        took_s = backend.restart(deadline_s=15)
        assert took_s > 0 and backend.pid != first_pid
        assert not psutil.pid_exists(first_pid) or \
            psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
        after = backend.sample()
        assert after.working_set_bytes < held.working_set_bytes - 0.9 * HOLD
        assert after.limit_bytes == 512 * MIB
    finally:
        backend.close()
    assert backend.state() is ContainerState.STOPPED


def test_host_memory_real_and_simulated():
    real = ProcMeminfoHost().sample()
    assert 0 < real.available_bytes <= real.total_bytes
    assert abs(real.total_bytes - psutil.virtual_memory().total) < 64 * MIB
    thor = SimulatedHost(total_bytes=2000 * MIB, system_reserve_bytes=160 * MIB)
    sample = thor.sample(ros_live_bytes=240 * MIB, container_working_set_bytes=600 * MIB)
    assert sample.available_bytes == 1000 * MIB
    with pytest.raises(ValueError):
        SimulatedHost(total_bytes=100, system_reserve_bytes=200)


def test_monitor_budget_follows_the_ros_reserve_within_a_period(tiny_process):
    argv, url = tiny_process
    backend = ProcessContainer(name="tiny", argv=argv, ollama_base_url=url)
    ros = SimpleNamespace(live_bytes=100 * MIB, reserve_bytes=200 * MIB)
    monitor = MemoryMonitor(backend=backend,
                            host=SimulatedHost(total_bytes=2000 * MIB,
                                               system_reserve_bytes=100 * MIB),
                            safety_buffer_bytes=32 * MIB, period_s=0.05,
                            headroom=lambda: ros)
    try:
        backend.start(deadline_s=15)
        monitor.start()
        first = monitor.latest()
        expected = model_budget_bytes(BudgetInputs(
            host_total_bytes=2000 * MIB, host_available_bytes=first.host_available_bytes,
            container_working_set_bytes=first.container.working_set_bytes,
            container_limit_bytes=0, ros_live_bytes=100 * MIB, ros_reserve_bytes=200 * MIB,
            safety_buffer_bytes=32 * MIB))
        assert first.model_budget_bytes == expected
        ros.live_bytes, ros.reserve_bytes = 700 * MIB, 900 * MIB  # Nav2 grew
        shrunk = poll_until(lambda: monitor.latest().model_budget_bytes
                            <= first.model_budget_bytes - 700 * MIB, timeout_s=5)
        assert shrunk
        assert poll_until(lambda: len(monitor.timeline()) >= 3, timeout_s=5)
        assert monitor.peak_working_set_since(first.stamp_s) >= first.container.working_set_bytes
    finally:
        monitor.stop()
        backend.close()


def test_footprint_cache_round_trip_and_a_damaged_file_is_kept_aside(tmp_path):
    path = str(tmp_path / "footprints.json")
    cache = FootprintCache(path)
    assert cache.get("phi4:14b", digest="sha256:ab", num_ctx=2048) is None
    cache.put("phi4:14b", digest="sha256:ab", num_ctx=2048, footprint_bytes=150 * MIB)
    again = FootprintCache(path)
    assert again.get("phi4:14b", digest="sha256:ab", num_ctx=2048) == 150 * MIB
    assert again.get("phi4:14b", digest="sha256:cd", num_ctx=2048) is None  # re-pulled model
    assert again.get("phi4:14b", digest="sha256:ab", num_ctx=4096) is None  # other context
    with open(path, "w") as handle:
        handle.write("{not json")
    damaged = FootprintCache(path)
    assert damaged.get("phi4:14b", digest="sha256:ab", num_ctx=2048) is None
    assert any(name.startswith("footprints.json.damaged-") for name in os.listdir(tmp_path))


def test_a_state_file_of_another_version_is_set_aside_as_such_not_as_damage(tmp_path, caplog):
    path = str(tmp_path / "footprints.json")
    with open(path, "w") as handle:
        handle.write('{"version": 0, "footprints": {"phi4:14b@sha256:ab@ctx2048": {"bytes": 9}}}')
    with caplog.at_level("INFO"):
        assert FootprintCache(path).get("phi4:14b", digest="sha256:ab", num_ctx=2048) is None
    names = os.listdir(tmp_path)
    assert any(name.startswith("footprints.json.other-format-") for name in names), names
    assert not any(".damaged-" in name for name in names)
    assert "written by another version" in caplog.text and "WARNING" not in caplog.text
