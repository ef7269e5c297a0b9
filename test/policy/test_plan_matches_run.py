"""One decider: the dry-run plan and the real run take the same steps on the same scenario."""

import pytest

from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from test_thor_sequence import thor_guard

# default: unload after each model, restart before models over 40 GB (the seed's rule);
# adaptive: keep models cached, unload others only when the next does not fit.
CASES = {
    "default": (dict(), ["phi4:14b", "qwen2.5-coder:32b", "llama3.3:70b", "deepseek-r1:7b"],
                {"llama3.3:70b": ["restart"]}),
    "adaptive": (dict(cost_aware_room=False), ["phi4:14b", "qwq:32b", "llama3.3:70b"],
                 {"llama3.3:70b": ["unload_others"]}),
}


def _runner(client, guard, tmp_path):
    return BenchmarkRunner(client=client, guard=guard,
                           options=RunOptions(repetitions=1, warmup=False, num_predict=32),
                           suite=load_suite("robot_mission"), results_root=tmp_path,
                           run_name="plan-vs-run")


@pytest.mark.parametrize("preset", sorted(CASES))
def test_the_plan_and_the_run_take_the_same_steps(thor_sim, thor_scenario, docker_client,
                                                  tmp_path, preset):
    overrides, models, expected = CASES[preset]
    guard, client, backend = thor_guard(thor_sim, thor_scenario, docker_client, preset,
                                        tmp_path, keep_alive="5m", **overrides)
    try:
        plan = _runner(client, guard, tmp_path).plan(models)
        outcome = _runner(client, guard, tmp_path).run(models)
    finally:
        guard.close()
        backend.close()
    planned = {p.model: (p.actions_before, bool(p.skip_reason)) for p in plan.models}
    ran = {m: (guard.record(m).actions_before, bool(guard.record(m).skip_reason))
           for m in models}
    assert planned == ran
    for model, steps in expected.items():
        assert planned[model] == (steps, False)
    assert outcome.status == "ok"
