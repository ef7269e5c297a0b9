"""Malformed requests get Ollama's errors, and the server keeps serving."""

import socket

import httpx
import ollama
import pytest


@pytest.fixture(scope='module')
def http(small_sim):
    with httpx.Client(base_url=small_sim.base_url, timeout=10) as client:
        yield client


def _post(http, path, raw: bytes):
    return http.post(path, content=raw, headers={'Content-Type': 'application/json'})


@pytest.mark.parametrize('path', ['/api/show', '/api/pull'])
def test_missing_model_is_400(http, path):
    reply = http.post(path, json={'prompt': 'hi', 'messages': []})
    assert reply.status_code == 400
    assert reply.json() == {'error': 'model is required'}


@pytest.mark.parametrize('path', ['/api/generate', '/api/chat'])
def test_a_generation_without_a_model_is_404_as_on_the_real_server(http, path):
    reply = http.post(path, json={'prompt': 'hi', 'messages': []})
    assert reply.status_code == 404
    assert reply.json() == {'error': "model '' not found"}


def test_unknown_model_is_404_with_ollama_wording(http):
    reply = http.post('/api/generate', json={'model': 'nope:1b', 'prompt': 'hi'})
    assert reply.status_code == 404
    assert reply.json() == {'error': "model 'nope:1b' not found"}
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=str(http.base_url)).show('nope:1b')
    assert caught.value.status_code == 404


def test_not_pulled_model_is_404(http):
    reply = http.post('/api/chat', json={'model': 'llama3.3:70b', 'messages': [
        {'role': 'user', 'content': 'hi'}]})
    assert reply.status_code == 404


@pytest.mark.parametrize('keep_alive, message', [
    ('abc', 'time: invalid duration "abc"'),
    ('300', 'time: missing unit in duration "300"'),
    (True, 'cannot unmarshal bool'),
])
def test_bad_keep_alive_is_400(http, keep_alive, message):
    reply = http.post('/api/generate', json={'model': 'qwen2.5:0.5b', 'prompt': 'hi',
                                             'keep_alive': keep_alive})
    assert reply.status_code == 400
    assert message in reply.json()['error']


@pytest.mark.parametrize('raw, message', [
    (b'{"model": "qwen2.5:0.5b", "prompt": ', 'unexpected EOF'),
    (b'xyz', "invalid character 'x' looking for beginning of value"),
    (b'', 'missing request body'),
    (b'[1, 2]', 'cannot unmarshal array'),
])
def test_broken_json_is_400(http, raw, message):
    reply = _post(http, '/api/generate', raw)
    assert reply.status_code == 400
    assert message in reply.json()['error']


def test_wrong_field_types_are_400(http):
    reply = http.post('/api/generate', json={'model': 5, 'prompt': 'hi'})
    assert reply.status_code == 400 and 'cannot unmarshal number' in reply.json()['error']
    reply = http.post('/api/generate', json={'model': 'qwen2.5:0.5b', 'prompt': 'hi',
                                             'options': {'num_ctx': 'big'}})
    assert reply.status_code == 400 and 'num_ctx' in reply.json()['error']


def test_huge_body_is_refused_and_the_server_keeps_serving(http):
    body = b'{"model": "qwen2.5:0.5b", "prompt": "' + b'a' * (20 * 1024 * 1024) + b'"}'
    reply = _post(http, '/api/generate', body)
    assert reply.status_code == 413
    assert reply.json() == {'error': 'http: request body too large'}
    assert http.get('/api/version').status_code == 200


def test_a_client_that_vanishes_mid_body_does_not_hurt_the_server(http, small_sim):
    port = int(small_sim.base_url.rsplit(':', 1)[1])
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        sock.sendall(b'POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"mo')
    assert http.get('/api/tags').status_code == 200


def test_unknown_path_is_404_and_root_says_running(http):
    assert http.get('/api/nothing').status_code == 404
    root = http.get('/')
    assert root.status_code == 200 and root.text == 'Ollama is running'
    assert http.head('/').status_code == 200


def test_bad_fault_settings_are_400(http):
    reply = http.post('/sim/faults', json={'explode': True})
    assert reply.status_code == 400 and 'unknown fault' in reply.json()['error']
    reply = http.post('/sim/faults', json={'leak': 3})
    assert reply.status_code == 400
