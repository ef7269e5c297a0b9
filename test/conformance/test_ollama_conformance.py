"""docs/ollama_conformance.md pinned: the simulator serves each field, the client reads it."""

import json
import threading
import time

import httpx
import psutil
import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.ollama.ollama_reply_shapes import (
    check_final_chunk, check_model_list, version_text)
from shadowhound_llm_bench.core.ollama.request_metrics import metrics_from_capture
from shadowhound_llm_bench.core.ollama.stream_capture import StreamCapture
from shadowhound_llm_bench.sim.launcher import start_local_simulator

from conformance_table import TYPES, assert_serves_field, field_rows

SMALL_MODEL = 'qwen2.5:0.5b'
THINKING_MODEL = 'deepseek-r1:1.5b'
NOT_PULLED = 'smollm2:135m'
ROWS = field_rows()


def _ndjson(response):
    return [json.loads(line) for line in response.iter_lines() if line.strip()]


def _kill_runner_mid_stream(sim, url):
    """Stream a long answer and kill the model's runner process after the first chunk."""
    body = {'model': SMALL_MODEL, 'prompt': 'Tell a long story.', 'stream': True,
            'options': {'num_predict': 4000}}
    lines = []
    with httpx.stream('POST', url + '/api/generate', json=body, timeout=30) as response:
        for raw in response.iter_lines():
            if not raw.strip():
                continue
            lines.append(json.loads(raw))
            if len(lines) == 1:
                for child in psutil.Process(sim.pid).children(recursive=True):
                    child.kill()  # the runner: Ollama's llama runner dies mid-stream
    return lines


@pytest.fixture(scope='module')
def samples():
    """Real replies of the simulator for every endpoint of the table, keyed like the table."""
    sim = start_local_simulator(scenario='small')
    url = sim.base_url
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            out = {'GET /api/version': [http.get('/api/version').json()],
                   'GET /api/tags': [http.get('/api/tags').json()]}
            out['POST /api/show'] = [http.post('/api/show', json={'model': SMALL_MODEL}).json()]
            with http.stream('POST', '/api/pull', json={'model': NOT_PULLED}) as response:
                out['POST /api/pull'] = _ndjson(response)
            load = {'model': SMALL_MODEL, 'prompt': '', 'stream': False}
            out['POST /api/generate (empty prompt: load)'] = [
                http.post('/api/generate', json=load).json()]
            out['GET /api/ps'] = [http.get('/api/ps').json()]
            generate = []
            for model, think in ((SMALL_MODEL, False), (THINKING_MODEL, True)):
                with http.stream('POST', '/api/generate', json={
                        'model': model, 'prompt': 'Say hello.', 'think': think,
                        'options': {'num_predict': 24}}) as response:
                    generate += _ndjson(response)
                    assert response.status_code == 200, generate[-1:]
                if model == SMALL_MODEL:  # the small container holds one of them at a time
                    out['POST /api/generate (empty prompt, keep_alive: 0)'] = [http.post(
                        '/api/generate', json=dict(load, keep_alive=0)).json()]
                    time.sleep(1.0)  # the scenario's unload delay
            out['POST /api/generate'] = generate
            chat = []
            with http.stream('POST', '/api/chat', json={
                    'model': THINKING_MODEL, 'think': True, 'options': {'num_predict': 24},
                    'messages': [{'role': 'user', 'content': 'Say hello.'}]}) as response:
                chat += _ndjson(response)
            chat.append(http.post('/api/chat', json={'model': THINKING_MODEL, 'messages': [],
                                                     'stream': False}).json())
            out['POST /api/chat'] = chat
            http.post('/api/generate', json=dict(load, model=THINKING_MODEL, keep_alive=0))
            time.sleep(1.0)
            missing = http.post('/api/show', json={'model': 'nosuch:1b'})
            out['any, HTTP status >= 400'] = [dict(missing.json(), _status=missing.status_code)]
        out['any stream, HTTP 200'] = _kill_runner_mid_stream(sim, url)
        yield out
    finally:
        sim.stop()


def test_the_table_covers_every_endpoint_the_client_calls():
    endpoints = {row['endpoint'] for row in ROWS}
    for endpoint in ('GET /api/version', 'GET /api/tags', 'POST /api/show', 'GET /api/ps',
                     'POST /api/pull', 'POST /api/generate', 'POST /api/chat'):
        assert endpoint in endpoints
    assert len(ROWS) >= 40
    assert all(row['type'] in TYPES for row in ROWS), [r['type'] for r in ROWS]


@pytest.mark.parametrize('row', [r for r in ROWS if r['simulator'] == 'serves'],
                         ids=lambda r: f"{r['endpoint']} {r['field']}")
def test_the_simulator_serves_the_field_with_its_type(samples, row):
    assert_serves_field(row, samples[row['endpoint']], row['endpoint'])


def test_a_load_and_an_unload_carry_no_durations_as_in_ollama(samples):
    for key in ('POST /api/generate (empty prompt: load)',
                'POST /api/generate (empty prompt, keep_alive: 0)'):
        (reply,) = samples[key]
        assert reply['done'] is True and reply['response'] == ''
        assert not {'load_duration', 'total_duration', 'eval_count'} & set(reply)
    chat_load = samples['POST /api/chat'][-1]
    assert chat_load['done_reason'] == 'load' and chat_load['message']['role'] == 'assistant'
    assert 'load_duration' not in chat_load


def test_a_missing_model_is_404_with_ollamas_message(samples):
    (reply,) = samples['any, HTTP status >= 400']
    assert reply == {'_status': 404, 'error': "model 'nosuch:1b' not found"}


def test_the_client_accepts_every_served_shape_and_reads_the_numbers(samples):
    version_text(samples['GET /api/version'][0])
    assert check_model_list(samples['GET /api/tags'][0], '/api/tags')
    assert check_model_list(samples['GET /api/ps'][0], '/api/ps')
    finals = [c for c in samples['POST /api/generate'] if c.get('done')]
    assert len(finals) == 2
    for final in finals:
        check_final_chunk(final)
        capture = StreamCapture(started_s=0.0, final=final, ended_s=1.0)
        metrics = metrics_from_capture(capture)
        # Durations are nanoseconds: rates and seconds come out of them unchanged.
        assert metrics.decode_tokens_per_s == pytest.approx(
            final['eval_count'] / final['eval_duration'] * 1e9)
        assert metrics.load_s == pytest.approx(final['load_duration'] / 1e9)
        assert metrics.done_reason in ('stop', 'length')


def test_the_client_reads_a_stream_error_line_as_a_stream_error(samples):
    lines = samples['any stream, HTTP 200']
    assert lines[-1] == {'error': 'an error was encountered while running the model: '
                                  'unexpected EOF'}


def test_the_client_load_and_unload_replies_and_a_measured_stream(tmp_path):
    with start_local_simulator(scenario='small') as sim, \
            OllamaClient(base_url=sim.base_url, request_timeout_s=30) as client:
        started = time.perf_counter()
        reply = client.load(SMALL_MODEL, keep_alive='1m', deadline_s=30)
        assert reply['done_reason'] == 'load' and 'load_duration' not in reply
        assert time.perf_counter() - started > 0
        capture = client.generate_stream(SMALL_MODEL, 'Say hello.', deadline_s=30,
                                         options={'num_predict': 8})
        assert capture.done_reason in ('stop', 'length') and capture.final['eval_count'] >= 1
        client.unload(SMALL_MODEL)
        done = threading.Event()
        for _ in range(50):
            if not client.ps():
                done.set()
                break
            time.sleep(0.1)
        assert done.is_set()
