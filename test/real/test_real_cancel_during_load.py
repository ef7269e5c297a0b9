"""The real Ollama: a load canceled midway ends inside the server, is followed and unloaded."""

import json

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.decider.residency import left_loaded
from shadowhound_llm_bench.engine.guard_building import build_memory_guard

from support.ollama_ps import unload_all, wait_empty

from real_run_support import run_canceled_during_load

BIG = real_ollama.models.BIG.name  # 804 MB F16: its load takes over a second on this CPU
EMPTY_WITHIN_S = 10.0  # after the result: /api/ps empty for good by then


def test_a_load_canceled_midway_leaves_the_real_server_empty(real_ollama_server, tmp_path):
    url = real_ollama_server.base_url
    unload_all(url)  # start cold
    client = OllamaClient(base_url=url)
    guard = build_memory_guard(settings=preset_settings('default'), client=client,
                               backend=ApiOnlyContainer(name='real-ollama', client=client))
    try:
        outcome, bookends = run_canceled_during_load(client, guard, tmp_path, BIG, 'real-cancel')
    finally:
        guard.close()
        client.close()
    assert outcome.status == 'canceled'
    end = bookends.end.to_dict()
    results = json.loads(outcome.reports.results_json.read_text())
    assert results['residency']['end']['still_loaded'] == end['still_loaded']
    summary = outcome.reports.markdown.read_text()
    for model, reason in left_loaded(end):
        assert f'- Still loaded: {model} — {reason}' in summary
    # The cut load was still running in the server when the run ended: it is followed.
    assert BIG in bookends.end.followed
    try:
        # Watched over the whole window: a load that ended after the cut would show up here.
        wait_empty(url, EMPTY_WITHIN_S)
        # Both releases stop the runner of a load whose client went away: it never shows up,
        # so the follower is still looking (until its deadline) or has unloaded it.
        for followed in bookends.follower.models:
            assert followed.outcome in ('', 'unloaded', 'not loaded'), followed
    finally:
        bookends.follower.stop()
        assert bookends.follower.wait(10.0)
