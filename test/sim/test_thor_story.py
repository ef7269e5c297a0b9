"""
The thor scenario reproduces the seed's failures under each memory management strategy.

Loads only (an empty prompt loads a model, as a warm-up does), at a faster clock.
"""

import time

import ollama
import pytest

SEED_ORDER = ['phi4:14b', 'qwen2.5-coder:32b', 'qwq:32b', 'llama3.3:70b', 'deepseek-r1:7b']
LARGE = {'llama3.3:70b'}  # the models over 40 GB


def _run(start_sim, scenario, *, unload, restart_large):
    sim = start_sim(scenario=scenario)
    failures = []
    for model in SEED_ORDER:
        if restart_large and model in LARGE:
            sim.stop()
            sim = start_sim(scenario=scenario)
        client = ollama.Client(host=sim.base_url, timeout=60)
        try:
            client.generate(model=model, prompt='', options={'num_ctx': 4096})
        except ollama.ResponseError as exc:
            failures.append((model, exc.error))
        if unload:
            client.generate(model=model, prompt='', keep_alive=0)
            deadline = time.monotonic() + 10
            while client.ps().models and time.monotonic() < deadline:
                time.sleep(0.05)
    return failures


@pytest.fixture
def thor(make_scenario):
    return make_scenario('thor', time_scale=0.01)


def test_no_management_fails_llama_by_oom_and_the_next_model_by_cascade(start_sim, thor):
    failures = _run(start_sim, thor, unload=False, restart_large=False)
    assert [model for model, _ in failures] == ['llama3.3:70b', 'deepseek-r1:7b']
    assert all(error.endswith('/load": EOF') for _, error in failures)


def test_unloading_only_fails_once_because_one_model_leaks(start_sim, thor):
    failures = _run(start_sim, thor, unload=True, restart_large=False)
    assert [model for model, _ in failures] == ['llama3.3:70b']


@pytest.mark.parametrize('unload', [False, True])
def test_restarting_before_large_models_fails_none(start_sim, thor, unload):
    assert _run(start_sim, thor, unload=unload, restart_large=True) == []
