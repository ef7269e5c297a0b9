"""The real Ollama: a load canceled midway ends inside the server, is followed and unloaded."""

import json
import threading
import time

import httpx

from shadowhound_llm_bench import real_ollama
from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.runs.progress import Phase
from shadowhound_llm_bench.core.decider.residency import left_loaded
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.cancellation import CancelToken
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

BIG = real_ollama.models.BIG.name  # 804 MB F16: its load takes over a second on this CPU
EMPTY_WITHIN_S = 10.0  # after the result: /api/ps empty for good by then


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
    # The cut load was still running in the server when the run ended: it is followed.
    assert BIG in bookends.end.followed
    try:
        # Watched over the whole window: a load that ended after the cut would show up here.
        started = time.monotonic()
        names, empty_since = None, None
        while time.monotonic() - started < EMPTY_WITHIN_S:
            names = _listed(url)
            if names:
                empty_since = None
            elif empty_since is None:
                empty_since = time.monotonic() - started
            time.sleep(0.05)
        assert names == [] and empty_since is not None, names
        # Both releases stop the runner of a load whose client went away: it never shows up,
        # so the follower is still looking (until its deadline) or has unloaded it.
        for followed in bookends.follower.models:
            assert followed.outcome in ('', 'unloaded', 'not loaded'), followed
    finally:
        bookends.follower.stop()
        assert bookends.follower.wait(10.0)
