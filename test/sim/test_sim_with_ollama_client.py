"""The official `ollama` client parses every answer of the simulator."""

import json
import time

import ollama
import pytest

MODEL = 'qwen2.5:0.5b'


@pytest.fixture(scope='module')
def client(small_sim):
    return ollama.Client(host=small_sim.base_url, timeout=30)


def test_list_shows_pulled_models_with_sizes_and_details(client):
    models = {m.model: m for m in client.list().models}
    assert {'qwen2.5:0.5b', 'llama3.2:1b'} <= set(models)
    assert 'llama3.3:70b' not in models  # not pulled in the small scenario
    qwen = models['qwen2.5:0.5b']
    assert qwen.size == 397821319
    assert qwen.details.parameter_size == '494.03M'
    assert qwen.details.quantization_level == 'Q4_K_M'
    assert len(qwen.digest) == 64


def test_show_has_architecture_metadata_and_capabilities(client):
    shown = client.show('llama3.2:1b')
    info = shown.modelinfo
    assert info['general.architecture'] == 'llama'
    assert info['general.parameter_count'] == 1235814432
    assert info['llama.block_count'] == 16
    assert info['llama.attention.head_count_kv'] == 8
    assert info['llama.embedding_length'] == 2048
    assert info['llama.context_length'] == 131072
    assert 'completion' in shown.capabilities
    assert shown.details.family == 'llama'


def test_pull_streams_progress_then_the_model_is_listed(client):
    events = list(client.pull('smollm2:135m', stream=True))
    assert events[0].status == 'pulling manifest'
    progress = [e for e in events if e.total]
    assert progress and progress[-1].completed == progress[-1].total == 270898672
    assert events[-1].status == 'success'
    assert 'smollm2:135m' in {m.model for m in client.list().models}


def test_pull_of_an_unknown_model_fails(client):
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull('no-such-model:7b', stream=False)
    assert 'file does not exist' in caught.value.error


def test_generate_without_stream_reports_ollama_timings(client):
    reply = client.generate(model=MODEL, prompt='Plan the route to the kitchen as JSON.',
                            options={'seed': 1})
    assert reply.done and reply.done_reason == 'stop'
    assert reply.eval_count > 0 and reply.eval_duration > 0
    assert reply.prompt_eval_count > 0 and reply.prompt_eval_duration > 0
    assert reply.total_duration >= reply.eval_duration + reply.prompt_eval_duration
    assert '"goal": "kitchen"' in reply.response


def test_streamed_generate_equals_the_whole_answer(client):
    whole = client.generate(model=MODEL, prompt='Say hello to the operator.',
                            options={'seed': 7})
    chunks = list(client.generate(model=MODEL, prompt='Say hello to the operator.',
                                  options={'seed': 7}, stream=True))
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert ''.join(c.response for c in chunks) == whole.response
    assert chunks[-1].eval_count == whole.eval_count
    assert chunks[-1].done_reason == 'stop'


def test_chat_streams_and_answers(client):
    messages = [{'role': 'user', 'content': 'Which way? (A) North (B) South'}]
    reply = client.chat(model=MODEL, messages=messages)
    assert reply.message.role == 'assistant'
    assert reply.message.content.startswith('Answer: ')
    parts = list(client.chat(model=MODEL, messages=messages, stream=True))
    assert ''.join(p.message.content for p in parts) == reply.message.content
    assert parts[-1].done and parts[-1].eval_count == reply.eval_count


def test_num_predict_cuts_the_answer_with_done_reason_length(client):
    reply = client.generate(model=MODEL, prompt='Plan the route to the kitchen as JSON.',
                            options={'num_predict': 5})
    assert reply.done_reason == 'length'
    assert reply.eval_count == 5


def _unload_all(client):
    for entry in client.ps().models:
        client.generate(model=entry.model, prompt='', keep_alive=0)
    deadline = time.monotonic() + 10
    while client.ps().models and time.monotonic() < deadline:
        time.sleep(0.05)


def test_thinking_model_writes_a_think_block_first(client):
    _unload_all(client)  # the 288 MiB container holds this model only beside small ones
    reply = client.generate(model='deepseek-r1:1.5b', prompt='Plan the route as JSON.',
                            keep_alive=0)
    assert reply.response.startswith('<think>\n')
    assert '</think>' in reply.response
    separate = client.generate(model='deepseek-r1:1.5b', prompt='Plan the route as JSON.',
                               think=True, keep_alive=0)
    assert separate.thinking and not separate.response.startswith('<think>')


def test_ps_lists_loaded_models_with_expiry_and_context(client):
    client.generate(model=MODEL, prompt='hi', keep_alive='10m', options={'num_ctx': 2048})
    running = {m.model: m for m in client.ps().models}
    assert MODEL in running
    entry = running[MODEL]
    assert entry.context_length == 2048
    assert entry.size > 397821319  # weights plus KV cache and graph
    assert entry.size_vram == 0  # the small machine runs CPU-only Ollama
    assert entry.expires_at is not None


def test_outputs_are_deterministic_per_seed(client):
    _unload_all(client)
    first = client.generate(model='llama3.2:1b', prompt='Plan a route as JSON.',
                            options={'seed': 3})
    again = client.generate(model='llama3.2:1b', prompt='Plan a route as JSON.',
                            options={'seed': 3})
    assert first.response == again.response
    assert first.response.startswith('Here is the plan:\n```json')  # this model fences JSON
    body = first.response.split('```json\n', 1)[1].split('```', 1)[0]
    assert json.loads(body)['steps']


def test_every_reply_says_it_comes_from_the_simulator_with_scripted_quality(small_sim):
    import httpx
    for path in ('/api/version', '/api/tags', '/api/ps'):
        reply = httpx.get(small_sim.base_url + path, timeout=5)
        assert reply.headers['X-Ollama-Simulator'] == (
            'shadowhound-sim; quality=scripted; memory_model=cgroup_charged')
    assert ollama.Client(host=small_sim.base_url).list().models  # the client ignores it
