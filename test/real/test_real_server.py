"""The real Ollama tier's own footing: each release starts, serves the made models, and stops."""

import httpx
import psutil

from shadowhound_llm_bench import real_ollama


def test_the_server_answers_with_its_release_and_serves_the_made_models(real_ollama_server):
    with httpx.Client(base_url=real_ollama_server.base_url, timeout=30.0) as http:
        assert http.get('/api/version').json() == {'version': real_ollama_server.version}
        names = {m['name'] for m in http.get('/api/tags').json()['models']}
        assert {s.name for s in real_ollama.STANDARD_SHAPES} <= names
        reply = http.post('/api/generate', json={'model': 'shb-tiny:f16', 'keep_alive': 0})
    assert reply.json()['done_reason'] in ('load', 'unload')


def test_stopping_a_server_ends_it_and_its_runners(real_ollama_dist):
    server = real_ollama.start_local_server(real_ollama_dist)
    try:
        real_ollama.ensure_models(server, [real_ollama.models.TINY])
        with httpx.Client(base_url=server.base_url, timeout=60.0) as http:
            http.post('/api/generate', json={'model': 'shb-tiny:f16', 'keep_alive': '1m'})
        runners = server.runner_pids()
        assert len(runners) == 1
        pids = [server.server_pid()] + runners
    finally:
        server.stop()
    assert not [pid for pid in pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
