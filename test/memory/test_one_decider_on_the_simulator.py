"""
One decider for every step, on the simulator's thor machine (real cgroup, real processes).

The dry run's plan and the real run take the same steps, a calibration's included, while a
preemption cuts the last model; and a calibration never unloads a model found loaded that the
user asked to keep (keep_models_found_loaded).
"""

import threading
import time
from types import SimpleNamespace

import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.units import GIB, MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import RunBookends, run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

from test_sources_on_simulated_machines import OllamaCgroup

SMALL, LARGER = "phi4:14b", "qwen2.5-coder:32b"
OPERATORS = "deepseek-r1:7b"  # loaded by another client before the run
ROS_RESERVE_BYTES = 256 * MIB
# The robot's reserve when Nav2 needs memory back: more than the 2 GiB machine has free.
ROS_BREACH_BYTES = 3 * GIB


class RosStandIn:
    """The ROS headroom as RosHeadroom reports it; the test moves the reserve."""

    def __init__(self):
        self.reserve_bytes = ROS_RESERVE_BYTES

    def sample(self):
        """Return live and reserve bytes now."""
        return SimpleNamespace(live_bytes=0, reserve_bytes=self.reserve_bytes)


@pytest.fixture
def thor(tmp_path):
    """Start the thor scenario's local simulator; yields (sim, scenario, ros, build)."""
    from shadowhound_llm_bench.sim.launcher import start_local_simulator
    from shadowhound_llm_bench.sim.machine import can_create_cgroups
    from shadowhound_llm_bench.sim.scenario import load_scenario
    if not can_create_cgroups():
        pytest.skip("needs root and cgroup v1 to build the simulated machine")
    sim = start_local_simulator(scenario="thor")
    scenario = load_scenario("thor")
    ros = RosStandIn()
    opened = []

    def build(**overrides):
        params = scenario.node_parameters
        settings = preset_settings(
            "default", memory_scale=scenario.memory_scale, order="given",
            num_ctx=params["num_ctx"], unload_deadline_s=10.0, memory_wait_s=0.5,
            sample_period_s=0.1, safety_buffer_bytes=params["safety_buffer_bytes"],
            restart_when_cleanup_fails=False, cleanup_grace_s=3.0, **overrides)
        machine = sim.machine
        client = OllamaClient(base_url=sim.base_url, request_timeout_s=60)
        guard = build_memory_guard(
            settings=settings, client=client, backend=OllamaCgroup(machine.sub_cgroup("ollama")),
            headroom=ros, footprint_cache_path=str(tmp_path / "footprints.json"),
            memory_scale=scenario.memory_scale,
            memory_sources=MemorySourceSettings(
                meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
                drop_caches_path=machine.drop_caches_path, sources=()))
        opened.append((guard, client))
        return guard, client

    yield sim, ros, build
    for guard, client in opened:
        guard.close()
        client.close()
    sim.stop()


def _runner(client, guard, tmp_path):
    return BenchmarkRunner(client=client, guard=guard,
                           options=RunOptions(repetitions=1, warmup=False, num_predict=64,
                                              request_deadline_s=60, load_deadline_s=60),
                           suite=load_suite("robot_mission"), results_root=tmp_path / "results",
                           run_name="plan-vs-run")


def _breach_during(client, ros, guard, model, deadline_s=120.0):
    """Raise the ROS reserve while model loads or streams; lower it once it was preempted."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:  # admitted to run (the calibration loads it too, before)
        admitted = any(r.model == model and r.memory_before_bytes is not None
                       for r in guard.records())
        if admitted and any(r.model == model and r.kind in ("load", "stream")
                            for r in client.in_flight()):
            ros.reserve_bytes = ROS_BREACH_BYTES
            break
        time.sleep(0.02)
    while time.monotonic() < end and not guard.preemptor.records():
        time.sleep(0.05)
    ros.reserve_bytes = ROS_RESERVE_BYTES


def test_the_plan_and_the_run_take_the_same_steps_with_a_calibration_and_a_preemption(
        thor, tmp_path):
    _, ros, build = thor
    guard, client = build()
    models = [SMALL, LARGER]
    plan = _runner(client, guard, tmp_path).plan(models)
    # The dry run calibrates nothing; it says what the run's calibration will do.
    assert plan.calibration_steps == [f"calibrate {SMALL}", "unload",
                                      f"calibrate {LARGER}", "unload"]
    assert guard.calibration is None and client.ps() == []
    breach = threading.Thread(target=_breach_during, args=(client, ros, guard, LARGER),
                              daemon=True)
    breach.start()
    run_between_bookends(guard, client, lambda: _runner(client, guard, tmp_path).run(models),
                         models)
    breach.join(130)
    # The run did what the plan said, the calibration's steps first, each as the policy said.
    assert guard.calibration_steps == plan.calibration_steps
    planned = {p.model: (p.actions_before, bool(p.skip_reason)) for p in plan.models}
    ran = {m: (guard.record(m).actions_before, bool(guard.record(m).skip_reason))
           for m in models}
    assert planned == ran
    unloads = [d for d in guard.decisions()
               if d.action == "unload" and d.reason.startswith("calibration")]
    assert [d.model for d in unloads] == [SMALL, LARGER]
    # The last model was preempted when the robot took its memory back.
    record = guard.preemptor.records()[0]
    assert LARGER in record.models and record.cut_requests >= 1, record
    assert "preempt" in [d.action for d in guard.decisions()]
    assert guard.record(LARGER).preemptions


def test_a_calibration_keeps_a_model_found_loaded_when_asked(thor):
    _, _, build = thor
    guard, client = build(preempt_on_breach=False)
    client.load(OPERATORS, keep_alive=-1, deadline_s=60)
    bookends = RunBookends(guard, client, run_models=[SMALL], keep_others=True)
    start = bookends.open()
    assert start.still_loaded == [OPERATORS] and guard.kept_found_loaded == (OPERATORS,)
    # The dry run says the same: nothing is unloaded before the calibration.
    assert guard.plan([SMALL]).calibration_steps == [f"calibrate {SMALL}", "unload"]
    assert guard.calibrate([SMALL])
    assert [e["name"] for e in client.ps()] == [OPERATORS]
    assert guard.calibration_steps == [f"calibrate {SMALL}", "unload"]
    kept = [d.reason for d in guard.decisions() if d.action == "calibrate" and
            "kept (keep_models_found_loaded)" in d.reason]
    assert len(kept) == 1 and OPERATORS in kept[0], kept
    # Not asked to keep it, the same calibration unloads it first (the policy's decision).
    guard.keep_found_loaded([])
    assert guard.calibrate([SMALL], force=True)
    assert guard.calibration_steps[0] == "unload_others"
    assert client.ps() == []
