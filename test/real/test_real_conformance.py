"""docs/ollama_conformance.md checked on the real server, row by row, on every release found."""

import json
import os
import signal
import time

import httpx
import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.ollama.ollama_reply_shapes import (
    check_final_chunk, check_model_list, check_show_reply, version_text)

from real_run_support import ONE_THREAD

from conformance_table import assert_serves_field, behaviour_rows, field_rows

TINY = 'shb-tiny:f16'
UNKNOWN = 'nope-model'
PS_KEYS = ['name', 'model', 'size', 'digest', 'details', 'expires_at', 'size_vram',
           'context_length']
FINAL_METRICS = {'total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration',
                 'eval_count', 'eval_duration'}
LOOP_PROMPT = 'Repeat yx forever'  # loops at temperature 0 on both releases (recorded replies)
FIELD_ROWS = [r for r in field_rows() if r['real'] != 'from source']
BEHAVIOURS = behaviour_rows()
CONTAINER_ROWS = {'runner-killed'}  # test/real/test_real_container.py (a memory-limited cgroup)


def _newer(version):
    return tuple(int(p) for p in version.split('.')) >= (0, 13, 0)


def _ndjson(response):
    return [json.loads(line) for line in response.iter_lines() if line.strip()]


def _complete_stream(http, path, body):
    """Stream until a reply with its final chunk: random weights may end early (seed by seed)."""
    for seed in range(1, 9):
        body = dict(body, options={'temperature': 0, 'num_predict': 8, 'seed': seed,
                                   **ONE_THREAD})
        with http.stream('POST', path, json=body) as response:
            lines = _ndjson(response)
            content_type = response.headers['content-type']
        if lines and lines[-1].get('done'):
            return lines, content_type
        body['prompt' if path == '/api/generate' else 'messages'] = (
            f'Say hello {seed}.' if path == '/api/generate'
            else [{'role': 'user', 'content': f'Say hello {seed}.'}])
    raise AssertionError(f'no complete {path} stream in 8 tries: {lines[-2:]}')


def _kill_runner_mid_stream(server, http):
    http.post('/api/generate', json={'model': TINY, 'keep_alive': '1m', 'options': ONE_THREAD})
    lines = []
    body = {'model': TINY, 'prompt': 'Tell a long story.',
            'options': {'num_predict': 400, 'temperature': 0.8, **ONE_THREAD}}
    with http.stream('POST', '/api/generate', json=body) as response:
        status = response.status_code
        for raw in response.iter_lines():
            if raw.strip():
                lines.append(json.loads(raw))
            if len(lines) == 2:
                for pid in server.runner_pids():
                    os.kill(pid, signal.SIGKILL)
    return status, lines, http.get('/api/ps').json()


@pytest.fixture(scope='session')
def real(real_ollama_server):
    """Collect one real release's replies for every row, once per server."""
    server = real_ollama_server
    out = {'version': server.version}
    with httpx.Client(base_url=server.base_url, timeout=120.0) as http:
        http.post('/api/generate', json={'model': TINY, 'keep_alive': 0})
        out['root'] = http.get('/').text
        out['GET /api/version'] = [http.get('/api/version').json()]
        out['GET /api/tags'] = [http.get('/api/tags').json()]
        out['POST /api/show'] = [http.post('/api/show', json={'model': TINY}).json()]
        out['ps_empty'] = http.get('/api/ps').json()
        load = {'model': TINY, 'keep_alive': '1m', 'options': ONE_THREAD}  # streamed: default
        with http.stream('POST', '/api/generate', json=load) as response:
            out['load_content_type'] = response.headers['content-type']
            out['POST /api/generate (empty prompt: load)'] = _ndjson(response)
        out['GET /api/ps'] = [http.get('/api/ps').json()]
        out['POST /api/generate'], out['stream_content_type'] = _complete_stream(
            http, '/api/generate', {'model': TINY, 'prompt': 'Say hello.'})
        chat, _ = _complete_stream(http, '/api/chat', {
            'model': TINY, 'messages': [{'role': 'user', 'content': 'Say hello.'}]})
        chat_load = http.post('/api/chat', json={'model': TINY, 'messages': [], 'stream': False,
                                                 'options': ONE_THREAD})
        out['POST /api/chat'] = chat + [chat_load.json()]
        unload_sent = time.monotonic()
        unload = http.post('/api/generate', json={'model': TINY, 'keep_alive': 0})
        out['unload_reply_s'] = time.monotonic() - unload_sent
        out['POST /api/generate (empty prompt, keep_alive: 0)'] = [unload.json()]
        polls = []
        while time.monotonic() - unload_sent < 10.0:
            listed = [m['name'] for m in http.get('/api/ps').json()['models']]
            polls.append((time.monotonic() - unload_sent, listed))
            if not listed:
                break
            time.sleep(0.01)
        out['unload_polls'] = polls
        errors = {}
        for key, path, body in (
                ('generate', '/api/generate', {'model': UNKNOWN, 'prompt': 'hi'}),
                ('chat', '/api/chat', {'model': UNKNOWN, 'messages': []}),
                ('load', '/api/generate', {'model': UNKNOWN}),
                ('show', '/api/show', {'model': UNKNOWN}),
                ('no_model', '/api/generate', {'prompt': 'hi'})):
            reply = http.post(path, json=body)
            errors[key] = (reply.status_code, reply.json())
        out['errors'] = errors
        out['any, HTTP status >= 400'] = [dict(errors['show'][1], _status=errors['show'][0])]
        with http.stream('POST', '/api/generate', json={
                'model': TINY, 'prompt': LOOP_PROMPT,
                'options': {'temperature': 0, 'num_predict': 512, **ONE_THREAD}}) as response:
            out['loop'] = (response.status_code, _ndjson(response))
        status, lines, ps_after = _kill_runner_mid_stream(server, http)
        out['any stream, HTTP 200'] = lines
        out['killed_mid_stream'] = (status, lines, ps_after)
        http.post('/api/generate', json={'model': TINY, 'keep_alive': 0})
    return out


def test_every_behaviour_row_has_its_check_on_the_real_server():
    rows = {r['row'] for r in BEHAVIOURS}
    assert rows == set(CHECKS) | CONTAINER_ROWS, rows ^ (set(CHECKS) | CONTAINER_ROWS)
    assert len(FIELD_ROWS) >= 40


@pytest.mark.parametrize('row', FIELD_ROWS, ids=lambda r: f"{r['endpoint']} {r['field']}")
def test_the_real_server_serves_the_field_row_with_its_type(real, row):
    assert real['version'] in row['real'].split(', ')
    assert_serves_field(row, real[row['endpoint']], f"{row['endpoint']} of {real['version']}")


def check_version(real):
    assert real['GET /api/version'] == [{'version': real['version']}]
    assert real['root'] == 'Ollama is running'
    with_client = version_text(real['GET /api/version'][0])
    assert with_client == real['version']


def check_tags_details(real):
    (reply,) = real['GET /api/tags']
    check_model_list(reply, '/api/tags')
    entry = next(m for m in reply['models'] if m['name'] == TINY)
    keys = ['name', 'model', 'modified_at', 'size', 'digest', 'details']
    details = ['parent_model', 'format', 'family', 'families', 'parameter_size',
               'quantization_level']
    if _newer(real['version']):
        assert list(entry) == keys + ['capabilities']
        assert list(entry['details']) == details + ['context_length', 'embedding_length']
        assert entry['details']['parent_model'].startswith('/')  # the blob's path
    else:
        assert list(entry) == keys and list(entry['details']) == details
        assert entry['details']['parent_model'] == ''


def check_ps_fields_order(real):
    assert real['ps_empty'] == {'models': []}
    (reply,) = real['GET /api/ps']
    (entry,) = reply['models']
    assert list(entry) == PS_KEYS
    assert entry['size_vram'] == 0 and entry['context_length'] == 4096
    assert entry['name'] == TINY and entry['size'] > 0


def check_load_only(real):
    assert real['load_content_type'].startswith('application/json')
    (reply,) = real['POST /api/generate (empty prompt: load)']
    assert list(reply) == ['model', 'created_at', 'response', 'done', 'done_reason']
    assert reply['done'] is True and reply['done_reason'] == 'load' and reply['response'] == ''
    chat_load = real['POST /api/chat'][-1]
    assert chat_load['done_reason'] == 'load'
    assert chat_load['message'] == {'role': 'assistant', 'content': ''}
    assert not FINAL_METRICS & set(chat_load)


def check_unload_reply(real):
    (reply,) = real['POST /api/generate (empty prompt, keep_alive: 0)']
    assert reply['done'] is True and reply['done_reason'] == 'unload'
    assert not FINAL_METRICS & set(reply)
    assert real['unload_reply_s'] < 1.0  # it answers at once; the runner exits afterwards


def check_unload_timing(real):
    polls = real['unload_polls']
    gone_s, last = polls[-1]
    assert last == [] and gone_s < 5.0, polls[-3:]
    if _newer(real['version']):
        # The first /api/ps after the reply waited for the unload: it already says gone.
        assert len(polls) == 1, polls
    else:
        assert polls[0][1] == [TINY], polls[:2]  # still listed at once, then gone


def check_stream_final_chunk(real):
    assert real['stream_content_type'].startswith('application/x-ndjson')
    final = real['POST /api/generate'][-1]
    assert final['done'] is True and final['done_reason'] in ('length', 'stop')
    assert FINAL_METRICS | {'context'} <= set(final)
    check_final_chunk({k: v for k, v in final.items() if k not in ('response', 'context')})


def check_chat_final_chunk(real):
    chunks = real['POST /api/chat'][:-1]
    assert all(c['message']['role'] == 'assistant' for c in chunks)
    final = chunks[-1]
    assert final['done'] is True and FINAL_METRICS <= set(final) and 'context' not in final


def check_error_404(real):
    errors = real['errors']
    for key in ('generate', 'chat', 'load'):
        assert errors[key] == (404, {'error': f"model '{UNKNOWN}' not found"}), key
    assert errors['no_model'] == (404, {'error': "model '' not found"})
    shown = f'{UNKNOWN}:latest' if _newer(real['version']) else UNKNOWN
    assert errors['show'] == (404, {'error': f"model '{shown}' not found"})


def check_show_keys(real):
    (reply,) = real['POST /api/show']
    # `parameters` only when the Modelfile sets any (omitempty): the made models set none.
    assert {'modelfile', 'template', 'details', 'model_info', 'tensors', 'capabilities',
            'modified_at'} <= set(reply)
    check_show_reply(reply)
    info = reply['model_info']
    assert info['general.architecture'] == 'llama' and info['llama.block_count'] == 6


def check_repeat_limit_end(real):
    status, lines = real['loop']
    assert status == 200 and len(lines) > 30
    assert not any('error' in line for line in lines)
    assert lines[-1]['done'] is False  # no final chunk: the server stopped the prediction


def check_stream_error_line(real):
    status, lines, ps_after = real['killed_mid_stream']
    assert status == 200
    assert lines[-1] == {'error': 'an error was encountered while running the model: '
                                  'unexpected EOF'}
    assert [m['name'] for m in ps_after['models']] == [TINY]  # listed, its runner dead


CHECKS = {
    'version': check_version, 'tags-details': check_tags_details,
    'ps-fields-order': check_ps_fields_order, 'load-only': check_load_only,
    'unload-reply': check_unload_reply, 'unload-timing': check_unload_timing,
    'stream-final-chunk': check_stream_final_chunk, 'chat-final-chunk': check_chat_final_chunk,
    'error-404': check_error_404, 'show-keys': check_show_keys,
    'repeat-limit-end': check_repeat_limit_end, 'stream-error-line': check_stream_error_line,
}


@pytest.mark.parametrize('row', sorted(CHECKS))
def test_the_real_server_shows_the_behaviour_row(real, row):
    CHECKS[row](real)


def test_the_client_reads_every_real_reply(real_ollama_server):
    with OllamaClient(base_url=real_ollama_server.base_url, request_timeout_s=60) as client:
        assert client.version() == real_ollama_server.version
        assert any(m['name'] == TINY for m in client.tags())
        assert client.show(TINY)['model_info']['llama.block_count'] == 6
        reply = client.load(TINY, keep_alive='1m', deadline_s=60)
        assert reply['done_reason'] == 'load'
        assert [m['name'] for m in client.ps()] == [TINY]
        client.unload(TINY)
