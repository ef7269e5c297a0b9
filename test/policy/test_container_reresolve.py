"""The Docker backend never loses track: a container stopped, started or recreated by name."""

import dataclasses
import threading

import httpx

from policy_engine_support import tiny_binds
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard import Proceed
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from support.waiting import poll_until

HOLD = 64 * MIB


def _recreate(docker_client, container, empty_image):
    """Remove the container and run a new one under the same name, command and port."""
    attrs = container.attrs
    name = container.name
    container.remove(force=True)
    return docker_client.containers.run(
        empty_image, attrs["Config"]["Cmd"], name=name, detach=True, init=True,
        network_mode="host", volumes=tiny_binds(), mem_limit="256m", memswap_limit="256m")


def test_a_container_recreated_under_its_name_is_followed_back_to_its_cgroup(
        tiny_container, docker_client, empty_image):
    name, url, container = tiny_container
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client,
                              resolve_period_s=0.05)
    old_id = backend.container_id
    try:
        assert backend.sampling == "cgroup"
        new = _recreate(docker_client, container, empty_image)
        try:
            assert poll_until(lambda: backend.sample().state is ContainerState.RUNNING
                              and backend.container_id == new.id, timeout_s=20)
            assert backend.sampling == "cgroup"  # the fast path, on the new container's files
            assert poll_until(lambda: _answers(url), timeout_s=15)
            empty = backend.sample().working_set_bytes
            httpx.post(f"{url}/hold/{HOLD}", timeout=10)
            assert backend.sample().working_set_bytes - empty >= 0.9 * HOLD
            changes = backend.id_changes()
            assert changes[0].old_id == old_id and changes[-1].new_id == new.id
            assert "recreated" in changes[-1].describe(name) or any(
                c.old_id == "" for c in changes)  # removed first, then found again
        finally:
            new.remove(force=True)
    finally:
        backend.close()


def _answers(url):
    try:
        return httpx.get(f"{url}/api/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_container_started_after_the_backend_moves_from_stats_to_cgroup_files(
        tiny_container, docker_client):
    name, url, container = tiny_container
    container.stop(timeout=2)
    backend = DockerContainer(name=name, ollama_base_url=url, docker_client=docker_client,
                              resolve_period_s=0.05)
    try:
        assert backend.sampling == "api"  # nothing to read while it is stopped
        assert backend.sample().state is ContainerState.STOPPED
        container.start()
        assert poll_until(lambda: backend.sampling == "cgroup", timeout_s=20)
        assert backend.sample().state is ContainerState.RUNNING
        assert backend.sample().limit_bytes == 256 * MIB
        assert backend.id_changes() == []  # the same container throughout
    finally:
        backend.close()


def test_a_missing_container_is_waited_for_when_asked(docker_client, tiny_container):
    name, url, _ = tiny_container
    backend = DockerContainer(name=name + "-later", ollama_base_url=url,
                              docker_client=docker_client, wait_for_container=True)
    try:
        assert backend.container_id == ""
        assert backend.sample().state is ContainerState.MISSING
        assert backend.state() is ContainerState.MISSING
    finally:
        backend.close()


def _thor_guard(sim, scenario, docker_client, tmp_path, sampling="auto"):
    params = scenario.node_parameters
    settings = preset_settings("default", memory_scale=scenario.memory_scale, order="given",
                               num_ctx=params["num_ctx"], unload_deadline_s=8.0,
                               memory_wait_s=0.5, sample_period_s=0.1,
                               safety_buffer_bytes=params["safety_buffer_bytes"])
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.url,
                              docker_client=docker_client, sampling=sampling,
                              api_period_s=1.0)
    client = OllamaClient(base_url=sim.url, request_timeout_s=30)
    guard = build_memory_guard(
        settings=settings, memory_scale=scenario.memory_scale, client=client, backend=backend,
        host=SimulatedHost(total_bytes=params["host_total_bytes"],
                           system_reserve_bytes=params["system_reserve_bytes"]),
        fixed_ros_reserve_bytes=params["ros_reserve_bytes"],
        footprint_cache_path=str(tmp_path / "footprints.json"))
    return guard, client, backend


def test_a_run_completes_when_the_container_is_recreated_mid_run_and_notes_the_new_id(
        thor_sim, thor_scenario, docker_client, tmp_path):
    guard, client, backend = _thor_guard(thor_sim, thor_scenario, docker_client, tmp_path)
    old_id = backend.container_id
    recreated = {}

    def recreate_when_loaded():
        # As `docker compose up` does after an image update: same name, new container.
        with OllamaClient(base_url=thor_sim.url) as watcher:
            poll_until(lambda: watcher.ps(), timeout_s=60, poll_s=0.02)
        sim = start_sim_container_named(docker_client, thor_sim, thor_scenario)
        recreated["id"] = sim.handle.container.id

    options = RunOptions(num_ctx=4096, num_predict=8, repetitions=1, warmup=False,
                         pull_missing=False, request_deadline_s=30, load_deadline_s=30,
                         load_attempts=2)
    suite = load_suite("robot_mission")
    suite = dataclasses.replace(suite, tasks=suite.tasks[:1])
    runner = BenchmarkRunner(client=client, guard=guard, options=options, suite=suite,
                             results_root=tmp_path / "results", preset="default")
    thread = threading.Thread(target=recreate_when_loaded, daemon=True)
    thread.start()
    try:
        outcome = runner.run(["deepseek-r1:7b", "phi4:14b", "qwen2.5-coder:32b"])
        thread.join(timeout=60)
    finally:
        guard.close()
        backend.close()
        client.close()
    new_id = recreated["id"]
    assert new_id != old_id and backend.container_id == new_id
    statuses = {m.model: m.status for m in outcome.summary.models}
    assert outcome.status in ("ok", "partial", "failed") and len(statuses) == 3
    reasons = {m.model: m.reason for m in outcome.summary.models}
    decisions = [(d.action, d.reason) for d in guard.decisions()]
    assert statuses["qwen2.5-coder:32b"] == "ok", (reasons, decisions)  # on the new container
    noted = [d for d in guard.decisions() if d.action == "container"]
    assert any(new_id[:12] in d.reason for d in noted)
    summary_md = (outcome.run_dir / "summary.md").read_text()
    assert new_id[:12] in summary_md


def start_sim_container_named(docker_client, sim, scenario):
    """Recreate the simulator container from its own configuration, as compose does."""
    old = sim.handle.container
    old.reload()
    attrs = old.attrs
    binds = {m["Source"]: {"bind": m["Destination"], "mode": "rw" if m.get("RW") else "ro"}
             for m in attrs.get("Mounts") or [] if m.get("Type") == "bind"}
    host = attrs["HostConfig"]
    old.remove(force=True)
    # The new one binds the same port: wait until the old process has let it go.
    poll_until(lambda: not _answers(sim.url), timeout_s=15)
    new = docker_client.containers.run(
        attrs["Config"]["Image"], attrs["Config"]["Cmd"], name=sim.name, detach=True,
        init=True, network_mode="host", volumes=binds, working_dir=attrs["Config"]["WorkingDir"],
        environment=[e for e in attrs["Config"]["Env"] or [] if not e.startswith("PATH=")],
        tmpfs=host.get("Tmpfs") or {}, labels=attrs["Config"]["Labels"] or {},
        cgroup_parent=host.get("CgroupParent") or None,
        mem_limit=scenario.container_limit_physical_bytes,
        memswap_limit=scenario.container_limit_physical_bytes)
    # The guard may restart it while it starts: only its answering counts.
    assert poll_until(lambda: _answers(sim.url), timeout_s=60)
    sim.handle.container = new  # the fixture removes the one that runs now
    return sim


def test_an_unload_is_judged_only_from_readings_taken_after_it(
        thor_sim, thor_scenario, docker_client, tmp_path):
    # Through the stats API a reading is up to a period old: such a reading was taken while
    # the model was still loaded and must not count as a fresh "memory stayed up".
    guard, client, backend = _thor_guard(thor_sim, thor_scenario, docker_client, tmp_path,
                                         sampling="api")
    try:
        assert backend.sampling == "api"
        assert isinstance(guard.before_model("phi4:14b"), Proceed)
        client.load("phi4:14b", keep_alive="5m", options={"num_ctx": 4096}, deadline_s=30)
        guard.after_model("phi4:14b")
        record = guard.record("phi4:14b")
    finally:
        guard.close()
        backend.close()
        client.close()
    assert record.cleanup_successful is True, [d.reason for d in record.decisions]
    assert not guard.restart_durations_s


def test_looking_up_again_never_follows_another_containers_id_prefix(tiny_container,
                                                                     docker_client):
    _, url, container = tiny_container
    prefix = container.id[:12]  # the engine resolves an ID prefix where a name is asked for
    backend = DockerContainer(name=prefix, ollama_base_url=url, docker_client=docker_client,
                              wait_for_container=True)
    try:
        assert backend.state() is ContainerState.MISSING  # looked up again: still not ours
        assert backend.container_id == "" and backend.sample().state is ContainerState.MISSING
        assert backend.id_changes() == []
    finally:
        backend.close()
