"""Model runners are told from the server and other processes by name and command line."""

import pytest

from shadowhound_llm_bench.core.ollama.model_runners import is_model_runner


@pytest.mark.parametrize('name,cmdline', [
    ('ollama', ['/opt/ollama-0.12.6/bin/ollama', 'runner', '--model', '/m/blobs/sha256-1',
                '--port', '40123']),
    ('llama-server', ['/opt/ollama-0.32.15/lib/ollama/llama-server', '--no-webui', '-c', '4096']),
    ('ollama-runner', ['python', '-I', '-S', '-c', '...']),
])
def test_runners_of_both_releases_and_of_the_simulator_are_runners(name, cmdline):
    assert is_model_runner(name, cmdline)


@pytest.mark.parametrize('name,cmdline', [
    ('ollama', ['/usr/bin/ollama', 'serve']),
    ('python', ['python', '-m', 'shadowhound_llm_bench.sim', '--scenario', 'thor']),
    ('docker-init', ['/sbin/docker-init', '--', '/usr/bin/ollama', 'serve']),
    ('', []),
])
def test_the_server_and_other_processes_are_not(name, cmdline):
    assert not is_model_runner(name, cmdline)
