"""A run of two real models against the real server as a local process: metrics and cleanup."""

import httpx

from real_run_support import TINY, TINY_Q4, by_model, run_cli, run_output


def test_a_run_of_two_real_models_measures_each_and_leaves_nothing_loaded(real_ollama_server,
                                                                          tmp_path):
    server = real_ollama_server
    done = run_cli(tmp_path, '--backend', 'api_only', '--host', server.base_url,
                   '--models', TINY, TINY_Q4, '--num-predict', '48')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir, summary, records = run_output(tmp_path)
    assert summary['run']['ollama_version'] == server.version
    assert summary['options']['extra_options'] == {'num_thread': 1}  # --num-thread 1, sent
    models = by_model(summary)
    for name in (TINY, TINY_Q4):
        model = models[name]
        assert model['status'] == 'ok', (name, model['reason'])
        assert model['tests_ok'] == 3 and model['tests_failed'] == 0
        assert model['metrics']['decode_tokens_per_s']['median'] > 0
        assert model['metrics']['ttft_ms']['median'] > 0
        assert model['load']['ok'] and model['load']['client_s'] > 0
    # Q4_K_M holds fewer bytes per weight than F16: the metadata says so.
    assert models[TINY_Q4]['metadata']['size_bytes'] < models[TINY]['metadata']['size_bytes']
    end = summary['residency']['end']
    assert end['verified'] and end['still_loaded'] == [], end
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get('/api/ps').json() == {'models': []}
    # Unloads are watched by polling /api/ps: sent, gone and judged within a fraction of a
    # second, with no fixed wait (the reply comes at once; the runner exits 15-155 ms later).
    unloads = [d for d in summary['memory']['decisions'] if d['action'] == 'unload']
    assert len(unloads) == 2 and max(d['duration_s'] for d in unloads) < 0.9, unloads
    print(f"ollama {server.version}: decode tok/s "
          f"{[round(models[n]['metrics']['decode_tokens_per_s']['median'], 1) for n in models]}"
          f", unloads {[round(d['duration_s'], 3) for d in unloads]} s")
