"""The guard's unloads on the thor simulator container: judged from fresh samples, sent at once."""

import json
import re

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard import Proceed
from shadowhound_llm_bench.engine.management_costs import COSTS_FILE_NAME, ManagementCosts

FRESH = re.compile(r"judged from (\d+) fresh sample\(s\) over ([0-9.]+) s")
OLD_FIXED_SETTLE_S = 1.0  # what the guard used to wait after /api/ps dropped a model


def _guard(sim, scenario, docker_client, tmp_path, preset="default"):
    params = scenario.node_parameters
    # The page-cache drop has its own tests (test/memory); these judge the unload itself.
    settings = preset_settings(preset, memory_scale=scenario.memory_scale, order="given",
                               num_ctx=params["num_ctx"], unload_deadline_s=5.0,
                               memory_wait_s=0.5, sample_period_s=0.1,
                               safety_buffer_bytes=params["safety_buffer_bytes"],
                               drop_caches="never")
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=sim.url, request_timeout_s=30)
    machine = sim.handle.machine
    # The scenario's container is charged for the model as mapped weights (file pages, never
    # in the working set until touched twice) plus anonymous KV cache: read both, as
    # calibration chooses on such a machine.
    sources = MemorySourceSettings(
        meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
        drop_caches_path=machine.drop_caches_path, sources=("cgroup_mapped",))
    guard = build_memory_guard(
        settings=settings, memory_scale=scenario.memory_scale, client=client, backend=backend,
        fixed_ros_reserve_bytes=params["ros_reserve_bytes"],
        footprint_cache_path=str(tmp_path / "footprints.json"), memory_sources=sources)
    return guard, client, backend


def _run_one(guard, client, model):
    assert isinstance(guard.before_model(model), Proceed)
    client.load(model, keep_alive="5m", options={"num_ctx": 4096}, deadline_s=30)
    guard.after_model(model)
    return guard.record(model)


def test_a_clean_unload_is_confirmed_on_the_first_fresh_sample(
        thor_sim, thor_scenario, docker_client, tmp_path):
    guard, client, backend = _guard(thor_sim, thor_scenario, docker_client, tmp_path)
    try:
        record = _run_one(guard, client, "phi4:14b")
    finally:
        guard.close()
        backend.close()
        client.close()
    assert record.cleanup_successful is True and record.unloads == 1
    (cleanup,) = [d for d in record.decisions if d.action == "cleanup"]
    assert "successful" in cleanup.reason
    samples, over_s = FRESH.search(cleanup.reason).groups()
    # The runner had exited when /api/ps dropped it: its memory was back at once (the host's
    # meminfo may need one more sample to show it), well before the grace a "stayed up" needs.
    assert int(samples) >= 1 and float(over_s) < guard.settings.cleanup_grace_s
    assert not guard.restart_durations_s


def test_a_leak_is_still_detected_from_fresh_samples_over_the_short_grace(
        thor_sim, thor_scenario, docker_client, tmp_path):
    guard, client, backend = _guard(thor_sim, thor_scenario, docker_client, tmp_path)
    grace_s = guard.settings.cleanup_grace_s
    try:
        record = _run_one(guard, client, "qwen2.5-coder:32b")  # the thor scenario leaks it
    finally:
        guard.close()
        backend.close()
        client.close()
    assert record.cleanup_successful is False
    (verdict,) = [d for d in record.decisions if "stayed up" in d.reason]
    assert verdict.action == "restart" and guard.restart_durations_s
    samples, over_s = FRESH.search(verdict.reason).groups()
    assert int(samples) >= guard.settings.cleanup_samples
    assert grace_s <= float(over_s) < OLD_FIXED_SETTLE_S
    # The unload and restart durations are kept beside the footprint cache for later runs.
    # They belong to this server (the simulator's version, this container, this machine).
    saved = json.loads((tmp_path / COSTS_FILE_NAME).read_text())
    (entry,) = saved["servers"].values()
    assert len(entry["unload_s"]) == 1 and len(entry["restart_s"]) == 1
    assert entry["server"]["ollama_version"] == "0.12.6-shb-sim"
    server = guard.management_costs.server
    costs = ManagementCosts(str(tmp_path / COSTS_FILE_NAME), server).costs()
    assert costs.restart_source.startswith("measured on Ollama 0.12.6-shb-sim via")
    assert costs.restart_s > 0
    elsewhere = ManagementCosts(str(tmp_path / COSTS_FILE_NAME)).costs()  # another server's
    assert not elsewhere.restart_source.startswith("measured")


def test_several_unloads_are_sent_at_once_and_waited_for_once(
        thor_sim, thor_scenario, docker_client, tmp_path):
    guard, client, backend = _guard(thor_sim, thor_scenario, docker_client, tmp_path)
    models = ("phi4:14b", "deepseek-r1:7b")
    try:
        for model in models:
            guard.predict(model)
            client.load(model, keep_alive="5m", options={"num_ctx": 4096}, deadline_s=30)
        result = guard.actions.unload(models, "llama3.3:70b")
        listed = [e.get("name") for e in client.ps()]
    finally:
        guard.close()
        backend.close()
        client.close()
    assert not result.still_listed and not listed
    expected = guard.settings.cleanup_min_release_fraction * sum(
        guard.predict(m).footprint_bytes for m in models)
    assert result.before_bytes - result.after_bytes >= expected
    assert result.fresh_samples >= 1 and result.judged_over_s < guard.settings.cleanup_grace_s
    source = guard.management_costs.costs().unload_source
    assert source.startswith("measured on Ollama") and source.endswith("median of 1")  # one wait


def test_a_damaged_costs_file_is_set_aside_and_the_seeds_costs_apply(tmp_path):
    path = tmp_path / COSTS_FILE_NAME
    path.write_text("{not json")
    costs = ManagementCosts(str(path))
    assert costs.costs().unload_s == 2.0 and costs.costs().restart_s == 15.0
    assert list(tmp_path.glob(f"{COSTS_FILE_NAME}.damaged-*"))
    costs.add_unload(0.25)
    costs.add_unload(0.35)
    costs.add_restart(0.4)
    again = ManagementCosts(str(path)).costs()
    assert again.unload_s == 0.3 and again.restart_s == 0.4
    assert again.unload_source.endswith("median of 2")
