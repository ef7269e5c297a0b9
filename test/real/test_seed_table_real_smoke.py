"""seed_table_real.py --smoke on each release: unmanaged loads are killed, managed ones not."""

import json
import os
import subprocess
import sys
import time

import pytest

from shadowhound_llm_bench.real_ollama.dist import REPO_ROOT

KILL_TEXTS = {'0.12.6': 'llama runner process has terminated: signal: killed',
              '0.32.15': 'llama-server process has terminated: signal: killed'}


@pytest.fixture
def docker_host():
    """Return the Docker engine's address; skip where none answers."""
    docker = pytest.importorskip('docker')
    host = os.environ.get('DOCKER_HOST', 'unix:///tmp/dockerd/docker.sock')
    try:
        client = docker.DockerClient(base_url=host, timeout=30)
        client.ping()
        client.close()
    except Exception as exc:  # no engine here: nothing to test against
        pytest.skip(f'no Docker engine at {host}: {exc}')
    return host


def test_no_management_is_killed_by_the_kernel_and_full_management_is_not(
        real_ollama_dist, docker_host, tmp_path):
    version = real_ollama_dist.version
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'benchmarks' / 'seed_table_real.py'), '--smoke',
         '--releases', version, '--results-dir', str(tmp_path),
         '--json', str(tmp_path / 'table.json')],
        capture_output=True, text=True, timeout=400, cwd=str(REPO_ROOT),
        env={**os.environ, 'DOCKER_HOST': docker_host})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    print(f'seed_table_real --smoke on {version}: {time.monotonic() - started:.0f} s')
    (result,) = json.loads((tmp_path / 'table.json').read_text())
    rows = {row['key']: row for row in result['rows']}
    none, full = rows['none'], rows['full']
    # Unmanaged: the cached models stay, the largest load is killed in the container's cgroup.
    assert none['kill_failures'] >= 1 and none['models_failed'] >= 1, none['note']
    assert none['cgroup_oom_kills'] >= 1 and none['docker_oom_events'] >= 1
    assert any(KILL_TEXTS.get(version, 'process has terminated: signal: killed') in text
               for text in none['kill_texts']), none['kill_texts']
    assert none['most_loaded'] >= 2
    # Managed: every model ends ok, the kernel never killed anything, the peak stayed under.
    assert full['models_failed'] == 0 and full['physics_failures'] == 0, full['note']
    assert full['cgroup_oom_kills'] == 0 and full['docker_oom_events'] == 0
    assert full['peak_working_set_bytes'] < full['limit_bytes']
    # Never two models at once; /api/ps is polled at 4 Hz, so a short load may go unseen (0).
    assert full['management_s'] > 0 and full['most_loaded'] <= 1
    assert f'Seed\'s table on the real Ollama {version}' in run.stdout
