"""Docker engine faults under a guarded run: container stopped, removed, engine unreachable."""

import os
import re
import subprocess
import sys

import docker
import pytest

from shadowhound_llm_bench.adapters.container_backend import ContainerError, ContainerNotFound
from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient

from reliab_run import by_model, log_records, of_type, run_models, small_guard, wait_for_record

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOGUS_DOCKER_HOST = 'unix:///tmp/reliab-no-such-docker.sock'
MODELS = ['qwen2.5:0.5b', 'llama3.2:1b']


def _guarded_run(sim, tmp_path, fault):
    """Run MODELS; `fault(container)` strikes once qwen2.5:0.5b has finished one test."""
    client = OllamaClient(base_url=sim.base_url, request_timeout_s=10)
    backend = DockerContainer(name=sim.name, ollama_base_url=sim.base_url,
                              docker_client=sim.container.client)
    guard = small_guard(backend, client, 'default')
    struck = []

    def during(runner):
        if wait_for_record(runner, 'test', 30.0, model='qwen2.5:0.5b'):
            fault(sim.container)
            struck.append(True)
    try:
        outcome = run_models(client, guard, MODELS, tmp_path, tasks=3, repetitions=2,
                             during=during)
    finally:
        guard.close()
        backend.close()
        client.close()
    assert struck, 'the fault never struck'
    records, bad = log_records(outcome)
    assert bad == 0
    # Nothing measured before the fault is lost.
    assert of_type(records, 'test', model='qwen2.5:0.5b', status='ok')
    return outcome, guard, records


def _ended_with_the_reason(outcome, records):
    """Both models end with a reason, the run ends failed, the reports are written."""
    results = by_model(outcome)
    assert results['qwen2.5:0.5b'].status == 'failed'
    assert 'stopped answering' in results['qwen2.5:0.5b'].reason
    assert 'did not bring it back' in results['qwen2.5:0.5b'].reason
    assert results['llama3.2:1b'].status == 'failed'  # in the reports, not only in the log
    (llama_end,) = of_type(records, 'model_end', model='llama3.2:1b')
    assert llama_end['status'] == 'failed'
    assert "reading llama3.2:1b's details failed" in llama_end['reason']
    assert 'Connection refused' in llama_end['reason']
    assert outcome.status == 'failed' and of_type(records, 'run_end', status='failed')
    assert outcome.reports.markdown.is_file() and outcome.reports.results_json.is_file()


def test_a_container_stopped_mid_run_is_restarted_and_the_model_retried(
        small_container, tmp_path):
    sim = small_container({'slow_s': {'qwen2.5:0.5b': 0.3}})
    outcome, guard, records = _guarded_run(sim, tmp_path, lambda c: c.stop(timeout=1))
    # The readings see it running again (the outage itself may fall between two samples).
    assert guard.timeline()[-1].container.state.name == 'RUNNING'
    # The runner reported the lost server; the policy said restart; the guard restarted.
    (lost,) = [d for d in guard.decisions() if 'stopped answering' in d.reason]
    # The reason names the container state the engine reported (stopped, or still stopping).
    assert lost.action == 'restart'
    assert re.search(r'; container (stopped|running|restarting|unknown)\)', lost.reason)
    assert 'retry qwen2.5:0.5b once' in lost.reason
    assert lost.duration_s > 0 and guard.restart_durations_s
    assert guard.record('qwen2.5:0.5b').retries == 1
    # The run recovered: both models completed, the outage's failures stay in the log.
    results = by_model(outcome)
    assert results['qwen2.5:0.5b'].status == 'ok', results['qwen2.5:0.5b'].reason
    assert results['llama3.2:1b'].status == 'ok', results['llama3.2:1b'].reason
    assert outcome.status == 'ok'
    qwen_tests = of_type(records, 'test', model='qwen2.5:0.5b')
    assert any(t['status'] == 'failed' and t['error_kind'] == 'unavailable' for t in qwen_tests)
    failed_at = max(i for i, t in enumerate(qwen_tests) if t['status'] == 'failed')
    after = qwen_tests[failed_at + 1:]
    assert after and all(t['status'] == 'ok' for t in after)
    # Every measured repetition of every task has an ok result: the broken ones were rerun.
    ok = {(t['task'], t['repetition']) for t in qwen_tests if t['status'] == 'ok'}
    assert len(ok) == 3 * 2
    assert len(of_type(records, 'load', model='qwen2.5:0.5b', ok=True)) == 2  # loaded again
    assert outcome.reports.markdown.is_file() and outcome.reports.results_json.is_file()


def test_a_container_removed_mid_run_ends_each_model_with_the_reason(
        small_container, docker_client, tmp_path):
    sim = small_container({'slow_s': {'qwen2.5:0.5b': 0.3}})
    outcome, guard, records = _guarded_run(sim, tmp_path, lambda c: c.remove(force=True))
    _ended_with_the_reason(outcome, records)
    # The guard was asked to recover; the policy said why it could not.
    gone = [d for d in guard.decisions() if 'removed' in d.reason]
    assert gone and all(d.action == 'skip' for d in gone)
    assert not guard.restart_durations_s
    # What the next run (CLI or node) is told: the container is gone, by name.
    with pytest.raises(ContainerNotFound, match=f'no Docker container named .{sim.name}'):
        DockerContainer(name=sim.name, ollama_base_url=sim.base_url,
                        docker_client=docker_client)


def test_a_model_failed_by_a_vanished_server_is_still_in_the_reports(local_sim, tmp_path):
    sim = local_sim({'slow_s': {'qwen2.5:0.5b': 0.3}})
    client = OllamaClient(base_url=sim.base_url, request_timeout_s=10)

    def stop_server(runner):
        if wait_for_record(runner, 'test', 30.0, model='qwen2.5:0.5b'):
            sim.stop()
    try:
        outcome = run_models(client, None, MODELS, tmp_path, tasks=3, during=stop_server)
    finally:
        client.close()
    records, _ = log_records(outcome)
    assert of_type(records, 'model_start', model='llama3.2:1b')  # a start and an end ...
    assert of_type(records, 'model_end', model='llama3.2:1b')
    llama = by_model(outcome)['llama3.2:1b']  # ... and so in every report
    assert llama.status == 'failed' and 'Connection refused' in llama.reason
    assert 'llama3.2:1b' in outcome.reports.markdown.read_text()
    assert 'llama3.2:1b' in outcome.reports.results_json.read_text()


def test_an_unreachable_engine_is_a_container_error_naming_the_engine(monkeypatch):
    monkeypatch.setenv('DOCKER_HOST', BOGUS_DOCKER_HOST)
    with pytest.raises(ContainerError, match='Docker engine unreachable') as caught:
        DockerContainer(name='reliab-nothing', ollama_base_url='http://127.0.0.1:9',
                        engine_timeout_s=5)
    assert f'DOCKER_HOST={BOGUS_DOCKER_HOST}' in str(caught.value)
    assert 'Error while fetching server API version' in str(caught.value)


def test_a_given_client_whose_engine_is_gone_is_a_container_error(monkeypatch):
    # The SDK passes the transport's connection error through unwrapped on the first get.
    monkeypatch.delenv('DOCKER_HOST', raising=False)
    client = docker.DockerClient(base_url=BOGUS_DOCKER_HOST, version='1.41', timeout=5)
    try:
        with pytest.raises(ContainerError, match='Docker engine unreachable at .*unix socket'):
            DockerContainer(name='reliab-nothing', ollama_base_url='http://127.0.0.1:9',
                            docker_client=client)
    finally:
        client.close()


def test_an_unreachable_engine_stops_the_cli_before_anything_runs(local_sim, tmp_path):
    sim = local_sim()
    path = [REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    env = dict(os.environ, DOCKER_HOST=BOGUS_DOCKER_HOST, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run(
        [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--host', sim.base_url,
         '--models', 'qwen2.5:0.5b', '--container', 'reliab-ollama', '--results-dir',
         str(tmp_path), '--quiet'], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60)
    assert proc.returncode == 1
    assert 'memory management cannot start' in proc.stderr
    assert 'Error while fetching server API version' in proc.stderr  # the engine, not Ollama
    assert '--unguarded' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not list(tmp_path.iterdir())  # no half-made run folder
