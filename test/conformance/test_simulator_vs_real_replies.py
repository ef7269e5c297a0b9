"""The simulator against the real server's recorded replies, on every behaviour row it claims."""

import json
from pathlib import Path

import httpx
import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.ollama.load_failures import RUNNER_KILLED, load_failure_kind
from shadowhound_llm_bench.sim.launcher import start_local_simulator

from conformance_table import behaviour_rows

REPLIES = Path(__file__).resolve().parents[1] / 'real' / 'replies'
SIM_RELEASE = '0.12.6'  # the release the simulator answers as
MODEL = 'qwen2.5:0.5b'
UNKNOWN = 'nope-model'
ROWS = {r['row']: r for r in behaviour_rows()}


def recorded(name, version=SIM_RELEASE):
    """One recorded reply of the real server (status, headers, parsed body or stream lines)."""
    return json.loads((REPLIES / version / f'{name}.json').read_text())


def _body(reply):
    return reply['body'] if 'body' in reply else reply['parsed'][-1]


def _ndjson(response):
    return [json.loads(line) for line in response.iter_lines() if line.strip()]


@pytest.fixture(scope='module')
def sim():
    """Collect the simulator's replies to the same requests as the recordings."""
    server = start_local_simulator(scenario='small')
    out = {}
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            out['version'] = http.get('/api/version')
            out['tags'] = http.get('/api/tags').json()
            out['ps_empty'] = http.get('/api/ps').json()
            with http.stream('POST', '/api/generate', json={'model': MODEL}) as response:
                out['load_type'] = response.headers['content-type']
                out['load'] = _ndjson(response)
            out['ps'] = http.get('/api/ps').json()
            with http.stream('POST', '/api/generate', json={
                    'model': MODEL, 'prompt': 'Say hello.',
                    'options': {'num_predict': 8}}) as response:
                out['stream_type'] = response.headers['content-type']
                out['stream'] = _ndjson(response)
            out['chat_load'] = http.post('/api/chat', json={
                'model': MODEL, 'messages': [], 'stream': False}).json()
            out['unload'] = http.post('/api/generate', json={'model': MODEL, 'keep_alive': 0})
            out['errors'] = {
                key: (reply.status_code, reply.json()) for key, reply in (
                    ('generate', http.post('/api/generate', json={'model': UNKNOWN,
                                                                  'prompt': 'hi'})),
                    ('chat', http.post('/api/chat', json={'model': UNKNOWN, 'messages': []})),
                    ('show', http.post('/api/show', json={'model': UNKNOWN})),
                    ('no_model', http.post('/api/generate', json={'prompt': 'hi'})))}
        yield out
    finally:
        server.stop()


def test_the_recorded_replies_are_the_real_servers_own():
    for version in ('0.12.6', '0.32.15'):
        assert _body(recorded('api_version', version)) == {'version': version}


def test_row_version_the_simulator_answers_as_its_release_marked_as_the_simulator(sim):
    assert '-shb-sim' in ROWS['version']['simulator']
    real = recorded('api_version')
    # The release it follows, marked: values kept per server never mix with a real 0.12.6.
    assert sim['version'].json() == {'version': _body(real)['version'] + '-shb-sim'}
    assert sim['version'].headers['content-type'] == real['headers']['Content-Type']


def test_row_ps_fields_order_equals_the_real_entry_key_for_key(sim):
    assert ROWS['ps-fields-order']['simulator'] == 'same'
    assert sim['ps_empty'] == _body(recorded('api_ps_empty'))
    real_entry = _body(recorded('api_ps_both_loaded'))['models'][0]
    (entry,) = sim['ps']['models']
    assert list(entry) == list(real_entry)
    assert list(entry['details']) == list(real_entry['details'])
    assert entry['expires_at'].endswith('Z') and real_entry['expires_at'].endswith('Z')


def test_row_tags_details_equal_the_real_release_the_simulator_claims(sim):
    real_entry = _body(recorded('api_tags'))['models'][0]
    entry = sim['tags']['models'][0]
    assert list(entry) == list(real_entry)
    assert list(entry['details']) == list(real_entry['details'])


def test_row_load_only_is_one_json_object_with_the_real_keys(sim):
    real = recorded('generate_load_only_tiny_stream_default')
    assert sim['load_type'].startswith('application/json')
    assert real['headers']['Content-Type'].startswith('application/json')
    (reply,) = sim['load']
    assert list(reply) == list(_body(real))
    real_chat = _body(recorded('chat_load_only_big'))
    assert list(sim['chat_load']) == list(real_chat)
    assert sim['chat_load']['message'] == real_chat['message']


def test_row_unload_reply_has_the_real_keys(sim):
    real = _body(recorded('generate_keep_alive_0_unload_tiny'))
    assert sim['unload'].status_code == 200
    assert list(sim['unload'].json()) == list(real)
    assert sim['unload'].json()['done_reason'] == real['done_reason'] == 'unload'


def test_row_stream_final_chunk_has_the_real_keys_but_context(sim):
    real = recorded('generate_stream_tiny_cold_load')
    assert sim['stream_type'].startswith(real['headers']['Content-Type'])
    real_final = json.loads(real['lines'][-1]['line'])
    assert list(sim['stream'][-1]) == [k for k in real_final if k != 'context']


def test_row_error_404_texts_equal_the_real_ones(sim):
    errors = sim['errors']
    for key, name in (('generate', 'unknown_generate'), ('chat', 'unknown_chat'),
                      ('show', 'unknown_show'), ('no_model', 'missing_model_field_generate')):
        real = recorded(name)
        assert errors[key] == (real['status'], _body(real)), key


def test_row_runner_killed_texts_of_both_releases_are_load_failures_of_the_runner():
    for version in ('0.12.6', '0.32.15'):
        real = recorded('cgroup600M_load_big_stream_false', version)
        assert real['status'] == 500
        assert load_failure_kind(_body(real)['error']) == RUNNER_KILLED
    assert 'EOF' in ROWS['runner-killed']['simulator']  # the difference is documented


def test_row_repeat_limit_end_the_simulator_ends_as_the_real_server_under_its_fault():
    real = recorded('repeat_yx_nostream')
    assert real['status'] == 200 and _body(real)['done'] is False
    assert 'repeat_limit' in ROWS['repeat-limit-end']['simulator']
    with start_local_simulator(scenario='small',
                               extra_faults={'repeat_limit': {'*': 10}}) as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            body = {'model': MODEL, 'prompt': 'Tell a long story.', 'stream': False,
                    'options': {'num_predict': 200}}
            reply = http.post('/api/generate', json=body)
            with http.stream('POST', '/api/generate', json=dict(body, stream=True)) as response:
                status, lines = response.status_code, _ndjson(response)
        with OllamaClient(base_url=server.base_url, request_timeout_s=30) as client:
            capture = client.generate_stream(MODEL, 'Tell a long story.', deadline_s=30,
                                             options={'num_predict': 200})
    assert reply.status_code == real['status'] and list(reply.json()) == list(_body(real))
    assert reply.json()['done'] is False
    assert status == 200 and len(lines) == 10
    assert not any(line.get('done') or 'error' in line for line in lines)
    assert capture.ended_early and len(capture.token_chunk_times_s) == 10
