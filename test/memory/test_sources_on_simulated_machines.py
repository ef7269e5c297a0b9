"""
The memory sources end to end on the simulator's two machines (real cgroups, real processes).

`thor` is a unified-memory machine: a model's device memory is held by the GPU driver outside
the Ollama cgroup, freed memory stays in the driver's pool until caches are dropped. `thor_cgroup`
charges the container (mmap'd weights). The product reads the machine's meminfo, its nvidia-smi
stand-in and the Ollama cgroup's files, as it reads /proc/meminfo, nvidia-smi and the
container's cgroup on a robot.
"""

import json
import os
import time

import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.engine.calibration_store import CALIBRATION_FILE_NAME
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard import Proceed

from support.simulated_machine import OllamaCgroup

SMALL, LARGER = "phi4:14b", "qwen2.5-coder:32b"


@pytest.fixture
def simulated(tmp_path):
    """Start a scenario's local simulator; yields a function building guards over it."""
    from shadowhound_llm_bench.sim.launcher import start_local_simulator
    from shadowhound_llm_bench.sim.machine import can_create_cgroups
    from shadowhound_llm_bench.sim.scenario import load_scenario
    if not can_create_cgroups():
        pytest.skip("needs root and cgroup v1 to build the simulated machine")
    started = []
    opened = []

    def start(scenario_name):
        sim = start_local_simulator(scenario=scenario_name)
        started.append(sim)
        return sim, load_scenario(scenario_name)

    def guard(sim, scenario, *, sources=(), drop_caches_path=None, cache_dir=None):
        params = scenario.node_parameters
        settings = preset_settings(
            "default", memory_scale=scenario.memory_scale, order="given",
            num_ctx=params["num_ctx"], unload_deadline_s=10.0, memory_wait_s=0.5,
            sample_period_s=0.1, safety_buffer_bytes=params["safety_buffer_bytes"],
            restart_when_cleanup_fails=False,
            # The simulated driver reports a runner's memory until the process has exited; on
            # a busy 2-core machine that lags the unload by more than the default 0.2 s grace.
            # A wider grace costs time only when the memory stays up, and changes no verdict.
            cleanup_grace_s=3.0)
        machine = sim.machine
        client = OllamaClient(base_url=sim.base_url, request_timeout_s=60)
        memory = None
        if sources is not None:
            memory = MemorySourceSettings(
                meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
                drop_caches_path=drop_caches_path or machine.drop_caches_path,
                sources=tuple(sources))
        built = build_memory_guard(
            settings=settings, client=client, memory_scale=scenario.memory_scale,
            backend=OllamaCgroup(machine.sub_cgroup("ollama")),
            fixed_ros_reserve_bytes=params["ros_reserve_bytes"],
            footprint_cache_path=str((cache_dir or tmp_path) / "footprints.json"),
            memory_sources=memory)
        opened.append((built, client))
        return built, client

    yield start, guard
    for built, client in opened:
        built.close()
        client.close()
    for sim in started:
        sim.stop()


def _run(guard, client, model):
    assert isinstance(guard.before_model(model), Proceed)
    client.load(model, keep_alive="5m", options={"num_ctx": 4096}, deadline_s=60)
    guard.after_model(model)
    return guard.record(model)


def test_the_unified_machine_is_calibrated_to_gpu_memory_and_judged_right(simulated, tmp_path):
    start, build = simulated
    sim, scenario = start("thor")
    # Without memory sources the product reads the container's working set, which never sees
    # the driver's allocations: the unload of a model that did leave is judged "stayed up".
    legacy, client = build(sim, scenario, sources=None, cache_dir=tmp_path / "legacy")
    wrong = _run(legacy, client, SMALL)
    assert wrong.cleanup_successful is False
    legacy.close()

    guard, client = build(sim, scenario)
    summary = guard.calibrate([LARGER, SMALL])
    assert summary and "cgroup_anon + gpu_processes" in summary and SMALL in summary
    assert guard.calibration.chosen == ("cgroup_anon", "gpu_processes")
    record = _run(guard, client, SMALL)
    assert record.memory_source == "cgroup_anon+gpu_processes"
    assert record.cleanup_successful is True
    estimate = guard.metadata_estimates[SMALL]
    assert 0.5 * estimate <= record.measured_footprint_bytes <= 2 * estimate
    assert not record.measurement_rejected_reason
    # The freed device memory sat in the driver's pool: the policy dropped the caches (the
    # machine's drop_caches file is writable) and the host got the memory back.
    assert record.drop_caches_calls >= 1 and record.reclaim_s is not None
    saved = json.loads((tmp_path / CALIBRATION_FILE_NAME).read_text())
    (entry,) = saved["machines"].values()
    assert entry["chosen"] == ["cgroup_anon", "gpu_processes"]

    # A later run on the same machine reuses the result and loads nothing to calibrate.
    again, _ = build(sim, scenario)
    assert again.calibrate([SMALL]) is None
    assert again.calibration.chosen == ("cgroup_anon", "gpu_processes")
    assert "calibrated earlier" in again.plan([SMALL]).memory_sources
    assert not [d for d in again.decisions() if d.action == "calibrate"]


def test_the_cgroup_charged_machine_is_calibrated_to_the_container(simulated, tmp_path):
    start, build = simulated
    sim, scenario = start("thor_cgroup")
    guard, client = build(sim, scenario)
    guard.calibrate([SMALL])
    # The runner's memory is the container's: its anonymous pages (engine buffers), or with
    # mapped weights also those; never GPU memory beside it.
    chosen = guard.calibration.chosen
    assert guard.calibration.tracked and chosen in (("cgroup_anon",), ("cgroup_mapped",))
    record = _run(guard, client, SMALL)
    assert record.cleanup_successful is True and record.drop_caches_calls == 0
    assert record.reclaim_s is not None
    assert chosen[0] in guard.plan([SMALL]).memory_sources


def test_without_the_privilege_the_drop_is_refused_once_and_the_run_goes_on(
        simulated, tmp_path):
    start, build = simulated
    sim, scenario = start("thor")
    no_right = tmp_path / "not-a-file"
    no_right.mkdir()
    guard, client = build(sim, scenario, sources=("cgroup_anon", "gpu_processes"),
                          drop_caches_path=str(no_right))
    first = _run(guard, client, SMALL)
    second = _run(guard, client, LARGER)
    refusals = [d for d in guard.decisions()
                if d.action == "drop_caches" and "cannot drop the page cache" in d.reason]
    assert len(refusals) == 1 and str(no_right) in refusals[0].reason
    assert first.drop_caches_calls == 0 and second.drop_caches_calls == 0
    # The model's memory did leave (the verdict is right); the host's is held by the pool.
    assert first.cleanup_successful is True and second.cleanup_successful is True
    assert os.path.isdir(no_right)


def test_a_footprint_from_a_source_that_misses_the_model_is_not_cached(simulated, tmp_path):
    start, build = simulated
    sim, scenario = start("thor")
    guard, client = build(sim, scenario, sources=("cgroup_working_set",))
    record = _run(guard, client, SMALL)
    assert "not kept" in record.measurement_rejected_reason
    assert "outside 0.5-2x" in record.measurement_rejected_reason
    cache = tmp_path / "footprints.json"
    assert not cache.exists() or "phi4" not in cache.read_text()
    assert any(d.action == "footprint_rejected" for d in record.decisions)


def test_a_footprint_taken_while_another_model_left_is_not_cached(simulated, tmp_path):
    start, build = simulated
    sim, scenario = start("thor")
    guard, client = build(sim, scenario, sources=("cgroup_anon", "gpu_processes"))
    client.load(SMALL, keep_alive="5m", options={"num_ctx": 4096}, deadline_s=60)
    assert isinstance(guard.before_model(LARGER), Proceed)
    client.unload(SMALL)  # Ollama lets another model go while this one loads
    client.load(LARGER, keep_alive="5m", options={"num_ctx": 4096}, deadline_s=60)
    end = time.monotonic() + 10
    while any(m.get("name") == SMALL for m in client.ps()) and time.monotonic() < end:
        time.sleep(0.05)
    guard.after_model(LARGER)
    record = guard.record(LARGER)
    assert f"evicted {SMALL}" in record.measurement_rejected_reason
    cache = tmp_path / "footprints.json"
    assert not cache.exists() or "qwen2.5-coder" not in cache.read_text()
