"""
On the unified Thor the policy keeps MemFree above the next model's footprint at every load.

MemFree is read by the test from the simulated machine's own meminfo file at the moment each
load is sent; the footprint is the simulator's own estimate of the model (what Ollama's fit
check asks for), never the product's prediction.
"""

import dataclasses

import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider import memfree_rule
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.machine import can_create_cgroups
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory

from support.simulated_machine import OllamaCgroup

pytestmark = pytest.mark.skipif(not can_create_cgroups(),
                                reason="needs root and a memory cgroup v1 hierarchy")

# A machine an earlier session used (qwen2.5-coder:32b loaded and unloaded: its blob's page cache
# and the driver's pool stay), two models cached, then one that needs both unloaded: the pool
# and the blobs' page cache leave MemFree just short of llama3.3:70b while MemAvailable suffices.
EARLIER = "qwen2.5-coder:32b"
MODELS = ["phi4:14b", "qwq:32b", "llama3.3:70b"]
NUM_CTX = 4096


class MeminfoAtLoads(OllamaClient):
    """An Ollama client that notes the machine's meminfo as each load is sent."""

    def __init__(self, machine, **kwargs):
        super().__init__(**kwargs)
        self.machine = machine
        self.at_loads = []

    def load(self, model, **kwargs):
        """Read the machine's meminfo, then load."""
        self.at_loads.append((model, self.machine.meminfo_bytes()))
        return super().load(model, **kwargs)


def _true_footprint(model, scale):
    return int(estimate_model_memory(builtin_catalog()[model], num_ctx=NUM_CTX).total_bytes
               * scale)


def _adaptive_run(tmp_path):
    from shadowhound_llm_bench.sim.launcher import start_local_simulator
    from shadowhound_llm_bench.sim.scenario import load_scenario
    scenario = load_scenario("thor")
    params = scenario.node_parameters
    with start_local_simulator(scenario="thor") as sim:
        machine = sim.machine
        with OllamaClient(base_url=sim.base_url, request_timeout_s=60) as earlier:
            earlier.load(EARLIER, keep_alive="5m", options={"num_ctx": NUM_CTX}, deadline_s=60)
            earlier.unload(EARLIER, deadline_s=30)
        settings = preset_settings(
            "adaptive", memory_scale=scenario.memory_scale, order="given", num_ctx=NUM_CTX,
            unload_deadline_s=10.0, memory_wait_s=0.5, sample_period_s=0.1,
            safety_buffer_bytes=params["safety_buffer_bytes"], restart_when_cleanup_fails=False,
            preempt_on_breach=False, cleanup_grace_s=3.0)
        client = MeminfoAtLoads(machine, base_url=sim.base_url, request_timeout_s=60)
        sources = MemorySourceSettings(
            meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
            drop_caches_path=machine.drop_caches_path, sources=("cgroup_anon", "gpu_processes"))
        guard = build_memory_guard(
            settings=settings, client=client, backend=OllamaCgroup(machine.sub_cgroup("ollama")),
            memory_scale=scenario.memory_scale,
            fixed_ros_reserve_bytes=params["ros_reserve_bytes"],
            footprint_cache_path=str(tmp_path / "footprints.json"), memory_sources=sources)
        options = RunOptions(num_ctx=NUM_CTX, num_predict=8, repetitions=1, warmup=False,
                             pull_missing=False, request_deadline_s=60, load_deadline_s=60,
                             load_attempts=2)
        suite = load_suite("robot_mission")
        suite = dataclasses.replace(suite, tasks=suite.tasks[:1])
        try:
            outcome = BenchmarkRunner(client=client, guard=guard, options=options, suite=suite,
                                      results_root=tmp_path / "results",
                                      preset="adaptive").run(MODELS)
            decisions = guard.decisions()
        finally:
            guard.close()
            client.close()
    # Free memory left over at each load: MemFree minus the model's true footprint.
    spare = [(model, meminfo["MemFree"] - _true_footprint(model, scenario.memory_scale))
             for model, meminfo in client.at_loads]
    return spare, outcome, decisions


def test_memfree_stays_above_the_next_models_footprint_at_every_load(tmp_path):
    spare, outcome, decisions = _adaptive_run(tmp_path)
    assert [m for m, _ in spare] == MODELS, spare  # one load each: no refusal, no retry
    assert all(left >= 0 for _, left in spare), spare
    assert [m.status for m in outcome.summary.models] == ["ok"] * len(MODELS)
    before = [d for d in decisions if d.model == MODELS[-1] and d.action == "drop_caches"
              and "next allocation" in d.reason]
    assert before and "drop_caches 1" in before[0].reason  # the least level first


def test_without_the_rule_memfree_falls_short_and_ollama_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(memfree_rule, "before_load", lambda *args, **kwargs: None)
    spare, outcome, _ = _adaptive_run(tmp_path)
    short = [(m, left) for m, left in spare if left < 0]
    assert short and short[0][0] == MODELS[-1], spare
    large = {m.model: m for m in outcome.summary.models}[MODELS[-1]]
    assert "requires more system memory" in large.reason
