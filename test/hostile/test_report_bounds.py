"""A run writes within bounds: its log stops at the bound with the reason, reports still built."""

import json

import pytest

from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine import runner as runner_module
from shadowhound_llm_bench.engine.runner import BenchmarkRunner
from shadowhound_llm_bench.reports.jsonl_log import (
    END_RESERVE_BYTES, JsonlLog, RunLogFull, read_records)
from shadowhound_llm_bench.sim.launcher import start_local_simulator


def test_the_log_refuses_records_past_its_bound_but_keeps_room_for_the_end(tmp_path):
    path = tmp_path / 'tests.jsonl'
    bound = END_RESERVE_BYTES + 10_000
    with JsonlLog(path=path, max_bytes=bound) as log:
        with pytest.raises(RunLogFull, match=f'bound of {bound} bytes'):
            for index in range(1000):
                log.append({'type': 'test', 'index': index, 'output': 'x' * 500})
        log.append({'type': 'run_end', 'status': 'failed', 'message': 'log full'})
    records, bad = read_records(path)
    assert bad == 0 and records[-1]['type'] == 'run_end'
    assert 10_000 - 600 < path.stat().st_size <= bound
    assert len(records) == 1 + sum(1 for r in records if r['type'] == 'test')


def test_a_run_that_outgrows_its_log_stops_with_the_reason_and_writes_its_reports(
        tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, 'MAX_RUN_LOG_BYTES', END_RESERVE_BYTES + 12_000)
    options = RunOptions(repetitions=5, num_predict=8, warmup=False, request_deadline_s=30)
    with start_local_simulator(scenario='small') as sim, \
            OllamaClient(base_url=sim.base_url, request_timeout_s=30) as client:
        runner = BenchmarkRunner(client=client, guard=None, options=options,
                                 suite=load_suite('robot_mission'), results_root=tmp_path)
        with pytest.raises(RunLogFull):
            runner.run(['qwen2.5:0.5b'])
    (run_dir,) = tmp_path.iterdir()
    records, bad = read_records(run_dir / 'tests.jsonl')
    assert bad == 0
    end = records[-1]
    assert end['type'] == 'run_end' and 'RunLogFull' in end['message']
    assert (run_dir / 'tests.jsonl').stat().st_size <= END_RESERVE_BYTES + 12_000
    assert 'reached its bound' in (run_dir / 'summary.md').read_text()
    assert json.loads((run_dir / 'results.json').read_text())
