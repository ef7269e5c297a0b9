"""Faults switched on by scenario, at start or at run time, and the pre-load memory check."""

import time

import httpx
import ollama
import pytest

EOF_PREFIX = 'do load request: Post "http://127.0.0.1:'


def _client(sim, timeout=30.0):
    return ollama.Client(host=sim.base_url, timeout=timeout)


def _set_faults(sim, faults):
    reply = httpx.post(sim.base_url + '/sim/faults', json=faults, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_crash_on_load_fails_the_given_number_of_loads(start_sim):
    sim = start_sim(scenario='small', extra_faults={'crash_on_load': {'qwen2.5:0.5b': 1}})
    client = _client(sim)
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='qwen2.5:0.5b', prompt='hi')
    assert caught.value.status_code == 500
    assert 'llama runner process has terminated' in caught.value.error
    assert client.generate(model='qwen2.5:0.5b', prompt='hi').done


def test_http_500_on_the_nth_request_set_at_run_time(start_sim):
    sim = start_sim(scenario='small')
    client = _client(sim)
    _set_faults(sim, {'http_500_on_request': [2]})
    assert client.generate(model='qwen2.5:0.5b', prompt='hi').done
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='qwen2.5:0.5b', prompt='hi')
    assert caught.value.status_code == 500
    assert client.generate(model='qwen2.5:0.5b', prompt='hi').done


def test_hang_is_seen_as_a_client_timeout_and_the_server_survives(start_sim):
    sim = start_sim(scenario='small', extra_faults={'hang_s': {'qwen2.5:0.5b': 2.0}})
    with pytest.raises(httpx.TimeoutException):
        _client(sim, timeout=0.5).generate(model='qwen2.5:0.5b', prompt='hi')
    assert _client(sim).list().models  # other requests are still served
    _set_faults(sim, {'reset': True})
    assert _client(sim).generate(model='qwen2.5:0.5b', prompt='hi').done


def test_slow_fault_delays_the_answer(start_sim):
    sim = start_sim(scenario='small', extra_faults={'slow_s': {'*': 0.5}})
    started = time.monotonic()
    _client(sim).generate(model='qwen2.5:0.5b', prompt='hi')
    assert time.monotonic() - started >= 0.5


def test_decode_slows_down_after_load_unload_cycles(start_sim):
    sim = start_sim(scenario='small',
                    extra_faults={'decode_slowdown': {'after_cycles': 1, 'fraction': 0.6}})
    client = _client(sim)
    before = client.generate(model='qwen2.5:0.5b', prompt='Plan as JSON.', keep_alive=0)
    deadline = time.monotonic() + 5
    while client.ps().models and time.monotonic() < deadline:
        time.sleep(0.05)
    after = client.generate(model='qwen2.5:0.5b', prompt='Plan as JSON.')
    speed_before = before.eval_count / before.eval_duration
    speed_after = after.eval_count / after.eval_duration
    assert speed_after == pytest.approx(0.4 * speed_before, rel=0.01)


def test_oom_kill_answers_eof_then_cascades_while_models_were_cached(start_sim, make_scenario):
    # Scripted: an Ollama that trusts 8 GiB loads past the container limit (no eviction first).
    scripted = make_scenario(server={'fit_check': 'believed_total'})
    sim = start_sim(scenario=scripted, extra_faults={'cascade_after_oom': 1})
    client = _client(sim)
    client.generate(model='llama3.2:1b', prompt='hi')  # 207 MB of the 288 MiB limit
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='deepseek-r1:1.5b', prompt='hi')
    assert caught.value.status_code == 500 and caught.value.error.startswith(EOF_PREFIX)
    assert caught.value.error.endswith('/load": EOF')
    assert client.list().models  # the server keeps serving
    client.generate(model='llama3.2:1b', prompt='', keep_alive=0)
    deadline = time.monotonic() + 5
    while client.ps().models and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ollama.ResponseError) as caught:  # unstable: a load that fits dies too
        client.generate(model='qwen2.5:0.5b', prompt='hi')
    assert caught.value.error.startswith(EOF_PREFIX)
    assert client.generate(model='qwen2.5:0.5b', prompt='hi').done
    faults = httpx.get(sim.base_url + '/sim/state').json()['faults']
    assert faults['oom_kills'] == 1


def test_scripted_preload_check_refuses_a_model_that_cannot_fit(start_sim, make_scenario):
    tight = make_scenario(machine={'believed_total': '1GiB'},
                          server={'fit_check': 'believed_total'})
    sim = start_sim(scenario=tight)
    with pytest.raises(ollama.ResponseError) as caught:
        _client(sim).generate(model='llama3.2:1b', prompt='hi')
    assert caught.value.status_code == 500
    assert caught.value.error == ('model requires more system memory (1.7 GiB) than is '
                                  'available (1.0 GiB)')


def test_preload_check_evicts_idle_models_first(start_sim, make_scenario):
    tight = make_scenario(machine={'believed_total': '2GiB'},
                          server={'fit_check': 'believed_total'})
    sim = start_sim(scenario=tight)
    client = _client(sim)
    client.generate(model='qwen2.5:0.5b', prompt='hi')
    client.generate(model='llama3.2:1b', prompt='hi')
    assert [m.model for m in client.ps().models] == ['llama3.2:1b']


def test_an_oom_kill_answers_the_llama_server_text_when_the_scenario_claims_v0_32(start_sim,
                                                                                  make_scenario):
    # Recorded on the real v0.32.15 under a 600 MiB cgroup limit (test/real/replies/0.32.15).
    scripted = make_scenario(server={'fit_check': 'believed_total', 'version': '0.32.15'})
    sim = start_sim(scenario=scripted)
    client = _client(sim)
    assert httpx.get(sim.base_url + '/api/version', timeout=5).json() == {'version': '0.32.15'}
    client.generate(model='llama3.2:1b', prompt='hi')  # 207 MB of the 288 MiB limit
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='deepseek-r1:1.5b', prompt='hi')
    assert caught.value.status_code == 500
    assert caught.value.error == 'llama-server process has terminated: signal: killed'
    assert client.list().models  # the server keeps serving
