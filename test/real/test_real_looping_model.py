"""A looping model on the real server: its silent end is a result with its tokens."""

import csv

from shadowhound_llm_bench.core.ollama.stream_end import ENDED_EARLY, ENDED_EARLY_TEXT

from real_run_support import TINY, run_cli, run_output

# Recorded on both releases (../shared/ollama/replies-*/repeat_yx_stream.json): the tiny model
# at temperature 0 repeats itself until the server's token-repeat limit ends the stream.
LOOP_PROMPT = 'Repeat yx forever'


SUITE = """\
name: looping
description: One prompt that a small synthetic model answers by repeating itself.
tasks:
  - id: repeat
    kind: instruction
    description: The model repeats one token until the server stops it.
    prompt: "%s"
    checks:
      - {type: not_truncated, points: 100}
""" % LOOP_PROMPT


def test_a_cli_run_of_a_looping_f16_model_reports_ok_with_the_loop_marked(real_ollama_server,
                                                                          tmp_path):
    suite = tmp_path / 'looping.yaml'
    suite.write_text(SUITE)
    results = tmp_path / 'results'
    done = run_cli(results, '--backend', 'api_only', '--host', real_ollama_server.base_url,
                   '--models', TINY, '--suite', str(suite))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir, results, tests = run_output(results)
    (model,) = results['models']
    assert model['status'] == 'ok', model['reason']
    # Temperature 0: the model loops until the server's repeat limit (or invalid UTF-8) ends it.
    assert model['ended_early'] == 1 and model['tests_ok'] == 1 and model['tests_failed'] == 0
    early = [t for t in tests if t['type'] == 'test' and t['metrics']['ended_early']]
    assert len(early) == model['ended_early']
    for test in early:
        assert test['status'] == 'ok' and test['output']
        metrics = test['metrics']
        # Ollama sent no counters: the chunks are the tokens, the client's clock times them.
        assert metrics['done_reason'] == ENDED_EARLY and metrics['decode_source'] == 'client'
        assert metrics['eval_count'] == metrics['token_chunks'] > 30  # past the repeat limit
        assert metrics['decode_tokens_per_s'] > 0 and metrics['ttft_ms'] > 0
        assert not metrics['truncated']  # the num_predict cap (512) did not end it
    assert model['metrics']['decode_tokens_per_s']['median'] > 0
    summary = (run_dir / 'summary.md').read_text()
    assert ENDED_EARLY_TEXT in summary and 'every measured test failed' not in summary
    with open(run_dir / 'results.csv', newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(r['ended_early']) for r in rows) == model['ended_early']
    (line,) = [line for line in done.stdout.splitlines() if line.strip().startswith(TINY)]
    assert ' ok ' in line and '1 of 1 test(s) ended early' in line, line
    print(f'ollama {real_ollama_server.version}: {line.strip()}')  # kept in the log
