"""A failed load named by Ollama's texts of every release seen, with the cgroup's OOM kills."""

import pytest

from shadowhound_llm_bench.adapters.cgroup_memory import CgroupMemoryFiles
from shadowhound_llm_bench.core.ollama.load_failures import (
    MEMORY_REFUSAL, OTHER, RUNNER_KILLED, RUNNER_LOST, load_failure_kind, with_oom_evidence)


@pytest.mark.parametrize('text, kind', [
    ('HTTP 500: llama runner process has terminated: signal: killed', RUNNER_KILLED),  # 0.12.6
    ('HTTP 500: llama-server process has terminated: signal: killed', RUNNER_KILLED),  # 0.32.15
    ('HTTP 500: do load request: Post "http://127.0.0.1:4/load": EOF', RUNNER_LOST),  # the seed
    ('HTTP 500: llama runner process has terminated: exit status 2', RUNNER_LOST),
    ('HTTP 500: model requires more system memory (9.8 GiB) than is available (7 GiB)',
     MEMORY_REFUSAL),
    ('HTTP 500: something new', OTHER),
])
def test_every_release_text_has_its_kind(text, kind):
    assert load_failure_kind(text) == kind


def test_the_oom_kills_seen_during_a_load_are_added_to_its_error():
    assert with_oom_evidence('killed', 3, 4).endswith(
        "(the kernel OOM-killed 1 process(es) in the container's memory cgroup during the load)")
    assert with_oom_evidence('killed', 3, 3) == 'killed'
    assert with_oom_evidence('killed', None, 4) == 'killed'


@pytest.mark.parametrize('usage, name, text', [
    ('memory.usage_in_bytes', 'memory.oom_control',
     'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n'),
    ('memory.current', 'memory.events', 'low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n'),
])
def test_the_cgroup_oom_kill_counter_is_read_on_v1_and_v2(tmp_path, usage, name, text):
    (tmp_path / usage).write_text('0\n')
    (tmp_path / name).write_text(text)
    assert CgroupMemoryFiles(str(tmp_path)).oom_kills() == 2
    (tmp_path / name).unlink()
    assert CgroupMemoryFiles(str(tmp_path)).oom_kills() is None
