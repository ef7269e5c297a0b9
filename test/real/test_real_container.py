"""The real server in a Docker container under a memory limit: cgroup, restart, OOM, the runner."""

import httpx
import pytest

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient, OllamaHTTPError
from shadowhound_llm_bench.core.ollama.load_failures import RUNNER_KILLED, load_failure_kind
from shadowhound_llm_bench.core.settings.run_options import RunOptions
from shadowhound_llm_bench.core.runs.suite import load_suite
from shadowhound_llm_bench.engine.cli_guard import build_guard_for_cli
from shadowhound_llm_bench.engine.run_bookends import run_between_bookends
from shadowhound_llm_bench.engine.runner import BenchmarkRunner

from support.real_ollama import PER_RELEASE, container_server
from support.waiting import settled

from real_run_support import BIG, ONE_THREAD, TINY, TINY_Q4, by_model, run_output

LIMIT_BYTES = 600 * 2**20  # shb-big:f16 needs ~935 MiB: the kernel kills its runner
KILL_TEXT = {'0.12.6': 'llama runner process has terminated: signal: killed',
             '0.32.15': 'llama-server process has terminated: signal: killed'}
PREFIX = 'shb-realconf'


@pytest.fixture(scope='module', **PER_RELEASE)
def limited(request, docker_client):
    """Start a real server of one release in a container limited to 600 MiB."""
    with container_server(docker_client, request.param, name_prefix=PREFIX,
                          mem_limit_bytes=LIMIT_BYTES) as server:
        backend = DockerContainer(name=server.container_name, ollama_base_url=server.base_url,
                                  docker_client=docker_client)
        try:
            yield server, backend
        finally:
            backend.close()


def test_the_docker_backend_reads_the_real_cgroup_rise_on_a_load_and_fall_on_unload(limited):
    server, backend = limited
    assert backend.sampling == 'cgroup'
    before = backend.read_cgroup_sample()
    assert before.limit_bytes == LIMIT_BYTES
    with OllamaClient(base_url=server.base_url, request_timeout_s=60) as client:
        client.load(TINY, keep_alive='1m', deadline_s=60)
        (entry,) = client.ps()
        loaded = backend.read_cgroup_sample()
        # The runner's weights and KV cache are charged to the container's cgroup.
        assert loaded.anon_bytes - before.anon_bytes > entry['size'] // 2, (before, loaded)
        client.unload(TINY)
        after = settled(backend.read_cgroup_sample,
                        lambda s: loaded.anon_bytes - s.anon_bytes > entry['size'] // 2,
                        timeout_s=20.0)
    assert loaded.anon_bytes - after.anon_bytes > entry['size'] // 2, (loaded, after)


def test_row_runner_killed_the_kernel_kills_the_runner_and_the_server_stays_up(limited):
    server, backend = limited
    cgroup = backend._cgroup
    kills_before = cgroup.oom_kills()
    assert kills_before is not None  # v1 memory.oom_control / v2 memory.events
    with OllamaClient(base_url=server.base_url, request_timeout_s=120) as client:
        with pytest.raises(OllamaHTTPError) as failed:
            client.load(BIG, keep_alive='1m', deadline_s=120)
        assert failed.value.status == 500
        assert failed.value.message == KILL_TEXT[server.version]
        assert load_failure_kind(str(failed.value)) == RUNNER_KILLED
        assert cgroup.oom_kills() > kills_before  # the kernel's OOM kill, seen in the cgroup
        assert client.ps() == [] and client.version() == server.version
        server.container.reload()
        # Docker's OOMKilled names the container's main process only: a killed runner child
        # leaves it false, so the product reads the cgroup's counter instead.
        assert server.container.attrs['State']['OOMKilled'] is False
        assert client.load(TINY, keep_alive='1m', deadline_s=60)['done_reason'] == 'load'
        client.unload(TINY)


def test_a_restart_brings_the_real_server_back_with_nothing_loaded(limited):
    server, backend = limited
    with OllamaClient(base_url=server.base_url, request_timeout_s=60) as client:
        client.load(TINY, keep_alive='5m', deadline_s=60)
        assert [m['name'] for m in client.ps()] == [TINY]
        took_s = backend.restart(deadline_s=60)
        assert 0 < took_s < 60
        assert client.version() == server.version and client.ps() == []
    assert backend.read_cgroup_sample().limit_bytes == LIMIT_BYTES


def _run_in_container(server, results, models):
    """Run the suite as the CLI does, with a policy made to try what the prediction doubts."""
    # 600 MiB holds no 2 GiB safety buffer: scale it down, and let the load be tried so that
    # the kernel, not the prediction, decides (preset fast loads a model predicted not to fit;
    # without preempt_on_breach the guard does not cut the load as the memory nears the limit).
    options = RunOptions(repetitions=1, warmup=False, num_predict=48, extra_options=ONE_THREAD,
                         request_deadline_s=600.0, load_deadline_s=300.0)
    with OllamaClient(base_url=server.base_url, request_timeout_s=600) as client:
        guard = build_guard_for_cli(
            client=client, container=server.container_name, preset='fast', memory_scale=0.05,
            backend_kind='docker', footprint_cache_path=str(results / 'footprints.json'),
            policy_overrides={'skip_models_that_never_fit': False,
                              'preempt_on_breach': False})
        try:
            runner = BenchmarkRunner(client=client, guard=guard, options=options,
                                     suite=load_suite('robot_mission'), results_root=results,
                                     run_name='container', preset='fast')
            outcome, _ = run_between_bookends(guard, client, lambda: runner.run(models),
                                              models)
        finally:
            guard.close()
    return outcome


def test_a_run_in_the_container_retries_skips_the_killed_model_and_measures_others(limited,
                                                                                   tmp_path):
    server, _ = limited
    outcome = _run_in_container(server, tmp_path, [BIG, TINY, TINY_Q4])
    run_dir, summary, records = run_output(tmp_path)
    models = by_model(summary)
    assert models[BIG]['status'] in ('skipped', 'failed'), models[BIG]
    assert KILL_TEXT[server.version] in models[BIG]['reason']
    loads = [r for r in records if r['type'] == 'load' and r['model'] == BIG]
    assert len(loads) == 2 and not any(r['ok'] for r in loads)  # retried once, then given up
    assert all(r['failure'] == RUNNER_KILLED and r['oom_kills'] >= 1 for r in loads), loads
    assert 'OOM-killed' in loads[-1]['error']
    seen = [(r['attempt'], r['failure'], r['oom_kills'], round(r['client_s'], 2)) for r in loads]
    print(f"ollama {server.version}: {BIG} loads {seen}; {models[BIG]['reason'][:160]}")
    decisions = [d for d in summary['memory']['decisions'] if d.get('model') == BIG]
    assert any('restart the container and retry' in d['reason'] for d in decisions), decisions
    assert any(d['reason'].startswith(f'skip {BIG}: load failed 2 time(s)') for d in decisions)
    for name in (TINY, TINY_Q4):
        model = models[name]
        assert model['status'] == 'ok', (name, model['reason'], outcome.message)
        assert model['tests_ok'] == 3 and model['metrics']['decode_tokens_per_s']['median'] > 0
        assert model['metrics']['ttft_ms']['median'] > 0
    end = summary['residency']['end']
    assert end['verified'] and end['still_loaded'] == [], end
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get('/api/ps').json() == {'models': []}
