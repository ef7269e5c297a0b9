"""The real Ollama: a load canceled midway ends inside the server, is followed and unloaded."""

import json
import threading
import time

import httpx

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.policy_settings import preset_settings
from shadowhound_llm_bench.core.progress import Phase
from shadowhound_llm_bench.core.residency import left_loaded
from shadowhound_llm_bench.core.run_options import RunOptions
from shadowhound_llm_bench.core.suite import load_suite
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.memory_guard import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

BIG = real_ollama.models.BIG.name  # 804 MB F16: its load takes over a second on this CPU
EMPTY_WITHIN_S = 10.0


def _listed(url):
    return [m['name'] for m in httpx.get(f'{url}/api/ps', timeout=5.0).json()['models']]


def test_a_load_canceled_midway_leaves_the_real_server_empty(real_ollama_server, tmp_path):
    url = real_ollama_server.base_url
    with httpx.Client(base_url=url, timeout=30.0) as http:  # start cold
        for name in _listed(url):
            http.post('/api/generate', json={'model': name, 'keep_alive': 0})
    deadline = time.monotonic() + 10.0
    while _listed(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    client = OllamaClient(base_url=url)
    guard = build_memory_guard(settings=preset_settings('default'), client=client,
                               backend=ApiOnlyContainer(name='real-ollama', client=client))
    cancel = CancelToken()

    def progress(event):
        if event.phase == Phase.LOADING and 'attempt' in event.status:
            threading.Timer(0.3, cancel.cancel, args=('test cancel',)).start()

    runner = BenchmarkRunner(client=client, guard=guard, options=RunOptions(repetitions=1),
                             suite=load_suite('robot_mission'), results_root=tmp_path,
                             run_name='real-cancel', on_progress=progress, cancel=cancel)
    try:
        outcome, bookends = run_between_bookends(guard, client, lambda: runner.run([BIG]),
                                                 [BIG])
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
    # The cut load went on inside the server: it was followed, not reported gone.
    assert BIG in bookends.end.followed
    started = time.monotonic()
    seen_loaded = False
    while time.monotonic() - started < EMPTY_WITHIN_S:
        names = _listed(url)
        seen_loaded = seen_loaded or BIG in names
        if not names and bookends.follower.done:
            break
        time.sleep(0.05)
    assert _listed(url) == []
    assert bookends.follower.wait(30.0)
    outcomes = {f.model: f.outcome for f in bookends.follower.models}
    assert outcomes[BIG] in ('unloaded', 'not loaded'), outcomes
    time.sleep(2.0)  # nothing turns up later
    assert _listed(url) == []
