"""The seed's experiment on the real Docker container running the simulator's thor scenario."""

import dataclasses

import pytest

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.footprint import prediction_error
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

# The seed's order: llama3.3:70b comes after three models are cached.
SEED_MODELS = ["phi4:14b", "qwen2.5-coder:32b", "qwq:32b", "llama3.3:70b", "deepseek-r1:7b"]
COUNTS = {}  # preset -> unloads + restarts, shared by the comparison test


def thor_guard(sim, scenario, docker_client, preset, tmp_path, **overrides):
    params = scenario.node_parameters
    # The seed's story between requests: no watchdog cuts a load (test_preemption.py does).
    overrides.setdefault("preempt_on_breach", False)
    # The scripted leak is the subject, not the page-cache drop (tested in test/memory).
    overrides.setdefault("drop_caches", "never")
    settings = preset_settings(preset, memory_scale=scenario.memory_scale, order="given",
                               num_ctx=params["num_ctx"], unload_deadline_s=5.0,
                               memory_wait_s=0.5, sample_period_s=0.1,
                               safety_buffer_bytes=params["safety_buffer_bytes"], **overrides)
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=sim.url, request_timeout_s=30)
    # The machine is read as a robot is: its meminfo, and the container's anonymous pages,
    # where this cgroup-charged machine's runners hold a model (what calibration chooses).
    machine = sim.handle.machine
    sources = MemorySourceSettings(
        meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
        drop_caches_path=machine.drop_caches_path, sources=("cgroup_anon",))
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=scenario.memory_scale,
                               fixed_ros_reserve_bytes=params["ros_reserve_bytes"],
                               footprint_cache_path=str(tmp_path / "footprints.json"),
                               memory_sources=sources)
    return guard, client, backend


def run_benchmark(client, guard, tmp_path, models=SEED_MODELS):
    # Unguarded means the seed's baseline: no memory management and no load retries.
    options = RunOptions(num_ctx=4096, num_predict=8, repetitions=1, warmup=False,
                         pull_missing=False, request_deadline_s=30, load_deadline_s=30,
                         load_attempts=1 if guard is None else 2)
    suite = load_suite("robot_mission")
    suite = dataclasses.replace(suite, tasks=suite.tasks[:1])  # memory is the subject here
    runner = BenchmarkRunner(client=client, guard=guard, options=options,
                             suite=suite, results_root=tmp_path / "results",
                             preset=guard.settings.preset if guard else "")
    outcome = runner.run(models)
    return {m.model: m for m in outcome.summary.models}


def management_actions(guard):
    return sum(r.unloads + r.restarts for r in guard.records())


def test_the_seed_sequence_fails_without_management(thor_sim, tmp_path):
    client = OllamaClient(base_url=thor_sim.url, request_timeout_s=30)
    results = run_benchmark(client, None, tmp_path)
    assert set(results) == set(SEED_MODELS)  # a result for every model, even so
    assert results["llama3.3:70b"].status == "failed"
    assert "EOF" in results["llama3.3:70b"].reason
    failed = [m for m, r in results.items() if r.status != "ok"]
    assert len(failed) >= 2, failed  # the seed's 2 of 5: the OOM and its cascade


@pytest.mark.parametrize("preset", ["default", "conservative", "adaptive"])
def test_the_seed_sequence_completes_with_management(preset, thor_sim, thor_scenario,
                                                     docker_client, tmp_path):
    guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, preset,
                                        tmp_path)
    try:
        results = run_benchmark(client, guard, tmp_path)
    finally:
        guard.close()
        backend.close()
    assert {m: r.status for m, r in results.items()} == {m: "ok" for m in SEED_MODELS}
    records = {r.model: r for r in guard.records()}
    assert all(r.retries == 0 for r in records.values())  # zero load failures
    budget = thor_scenario.node_parameters["container_limit_bytes"]
    assert max(r.container.working_set_bytes for r in guard.timeline()) < budget
    for record in records.values():
        assert record.memory_before_bytes is not None and record.memory_peak_bytes
        assert record.measured_footprint_bytes and record.prediction_source == "metadata"
        error = prediction_error(record.predicted_footprint_bytes,
                                 record.measured_footprint_bytes)
        assert abs(error) <= 0.15, (record.model, error)
    if preset in ("default", "conservative"):
        # The scenario's leak fault keeps qwen2.5-coder's memory after unload: restart.
        leak = records["qwen2.5-coder:32b"]
        assert leak.cleanup_successful is False and leak.restarts >= 1
        assert all(records[m].cleanup_successful for m in SEED_MODELS
                   if m != "qwen2.5-coder:32b")
    if preset == "default":
        assert records["llama3.3:70b"].restarts >= 1  # the 40 GB rule, scaled
    if preset == "conservative":
        assert all(r.restarts >= 1 for r in records.values())
    COUNTS[preset] = management_actions(guard)
    assert all(d.reason for d in guard.decisions())


def test_fast_recovers_only_after_a_failed_load(thor_sim, thor_scenario, docker_client,
                                                tmp_path):
    guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, "fast",
                                        tmp_path)
    try:
        results = run_benchmark(client, guard, tmp_path)
    finally:
        guard.close()
        backend.close()
    records = {r.model: r for r in guard.records()}
    llama = records["llama3.3:70b"]
    assert llama.retries >= 1 and llama.restarts >= 1  # the load failed first: no prevention
    assert any(d.action == "load" and "makes no room" in d.reason for d in llama.decisions)
    assert set(results) == set(SEED_MODELS)
    COUNTS["fast"] = management_actions(guard)


def test_adaptive_needs_fewer_unloads_and_restarts_than_default(
        thor_sim, thor_scenario, docker_client, tmp_path):
    for preset in ("default", "adaptive"):
        if preset in COUNTS:
            continue
        guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, preset,
                                            tmp_path / preset)
        try:
            backend.restart(deadline_s=30)
            run_benchmark(client, guard, tmp_path / preset)
        finally:
            guard.close()
            backend.close()
        COUNTS[preset] = management_actions(guard)
    print(f"unloads + restarts per preset: {COUNTS}")
    assert COUNTS["adaptive"] < COUNTS["default"], COUNTS


def test_dry_run_plan_predicts_the_run(thor_sim, thor_scenario, docker_client, tmp_path):
    guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, "default",
                                        tmp_path)
    try:
        plan = guard.plan(SEED_MODELS)
        assert [p.model for p in plan.models] == SEED_MODELS
        assert all(p.prediction_source == "metadata" for p in plan.models)
        llama = plan.models[3]
        assert llama.actions_before == ["restart"]
        assert plan.predicted_unloads == 5 and plan.predicted_restarts == 1
        assert plan.predicted_peak_bytes < plan.model_budget_bytes
        assert client.ps() == []  # a dry run loads nothing
    finally:
        guard.close()
        backend.close()


def test_a_crashing_runner_is_restarted_retried_then_skipped(
        thor_sim_with, thor_scenario, docker_client, tmp_path):
    thor_sim = thor_sim_with('{"crash_on_load": {"deepseek-r1:7b": -1}}')
    thor_sim.set_faults({"crash_on_load": {"deepseek-r1:7b": -1, "phi4:14b": 1}})
    guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, "default",
                                        tmp_path)
    try:
        results = run_benchmark(client, guard, tmp_path,
                                models=["phi4:14b", "deepseek-r1:7b", "qwq:32b"])
    finally:
        guard.close()
        backend.close()
    records = {r.model: r for r in guard.records()}
    assert results["phi4:14b"].status == "ok"  # crashed once: restart, retry, fine
    assert records["phi4:14b"].retries == 1 and records["phi4:14b"].restarts >= 1
    crashing = records["deepseek-r1:7b"]
    assert results["deepseek-r1:7b"].status == "failed"
    assert crashing.retries == 1 and crashing.restarts >= 1
    assert "runner process has terminated" in crashing.skip_reason
    assert "2 time(s)" in crashing.skip_reason
    assert results["qwq:32b"].status == "ok"  # the run goes on
