"""Simulator faults the other areas do not already cover end to end: decode slowdown, cascade."""

from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient

from reliab_run import by_model, log_records, of_type, run_models, small_guard


def test_decode_slowdown_after_reloads_is_flagged_by_the_canary(local_sim, tmp_path):
    # Thor's slowdown after repeated unload/reload cycles: from the first unload on, decoding
    # runs at 40 % of its speed. The canary before the run is fast, the one after is slow.
    sim = local_sim({'decode_slowdown': {'after_cycles': 1, 'fraction': 0.6}})
    client = OllamaClient(base_url=sim.base_url, request_timeout_s=10)
    backend = ApiOnlyContainer(name='reliab-api', client=client, memory_scale=1 / 8)
    guard = small_guard(backend, client, 'default')
    try:
        outcome = run_models(client, guard, ['llama3.2:1b'], tmp_path,
                             canary_model='qwen2.5:0.5b', canary_slowdown_percent=15.0)
    finally:
        guard.close()
        client.close()
    assert outcome.status == 'ok'
    assert by_model(outcome)['llama3.2:1b'].status == 'ok'  # the run itself still completes
    canary = outcome.summary.canary
    before = canary['before']['decode_tokens_per_s']
    after = canary['after']['decode_tokens_per_s']
    assert after < 0.7 * before
    verdict = canary['verdict']
    assert verdict['slowed_down'] is True
    assert 'machine slowed down' in verdict['message']
    assert 'machine slowed down' in outcome.reports.markdown.read_text()


def _cascade_run(small_container, tmp_path, **overrides):
    """qwen2.5:0.5b stays cached, llama3.2:1b does not fit beside it: OOM, then the cascade."""
    sim = small_container({'cascade_after_oom': 1}, scenario='small_faults')  # scripted
    # The OOM must happen: no watchdog stops the load first (test_preemption.py covers that).
    overrides.setdefault('preempt_on_breach', False)
    client = OllamaClient(base_url=sim.base_url, request_timeout_s=10)
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.base_url,
                              docker_client=sim.container.client)
    guard = small_guard(backend, client, 'fast', **overrides)
    try:
        outcome = run_models(client, guard, ['qwen2.5:0.5b', 'llama3.2:1b'], tmp_path)
    finally:
        guard.close()
        backend.close()
        client.close()
    records, bad = log_records(outcome)
    assert bad == 0
    return outcome, guard, records


def test_a_restart_before_the_retry_clears_the_cascade_after_an_oom(small_container, tmp_path):
    outcome, guard, records = _cascade_run(small_container, tmp_path)
    loads = [(r['model'], r['ok']) for r in of_type(records, 'load')]
    assert loads == [('qwen2.5:0.5b', True), ('llama3.2:1b', False), ('llama3.2:1b', True)]
    assert 'EOF' in of_type(records, 'load', ok=False)[0]['error']
    llama = guard.record('llama3.2:1b')
    assert llama.retries == 1 and llama.restarts >= 1
    assert {m: r.status for m, r in by_model(outcome).items()} == {
        'qwen2.5:0.5b': 'ok', 'llama3.2:1b': 'ok'}


def test_without_a_restart_the_cascade_fails_the_retry_and_says_so(small_container, tmp_path):
    outcome, guard, records = _cascade_run(small_container, tmp_path,
                                           restart_on_load_failure=False)
    loads = [(r['model'], r['ok']) for r in of_type(records, 'load')]
    assert loads == [('qwen2.5:0.5b', True), ('llama3.2:1b', False), ('llama3.2:1b', False)]
    llama = by_model(outcome)['llama3.2:1b']
    assert llama.status == 'failed' and 'load failed after 2 attempt(s)' in llama.reason
    assert by_model(outcome)['qwen2.5:0.5b'].status == 'ok'  # the finished model is kept
    assert guard.record('llama3.2:1b').restarts == 0
    assert 'llama3.2:1b' in outcome.reports.markdown.read_text()
