"""The simulator in a real Docker container: the memory limit kills runners, memory is readable."""

import os
import time
import uuid

import ollama
import pytest

from shadowhound_llm_bench.adapters.docker_engine import container_cgroup
from shadowhound_llm_bench.sim.launcher import start_container_simulator

EOF_PREFIX = 'do load request: Post "http://127.0.0.1:'


@pytest.fixture
def container_sim(docker_client):
    """Start small-scenario simulator containers; removed by handle afterwards."""
    started = []

    def start(**kwargs):
        sim = start_container_simulator(docker_client=docker_client,
                                        name='sim-test-' + uuid.uuid4().hex[:8],
                                        scenario='small', port=0, **kwargs)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.remove()


def _unload_and_wait(client, model):
    client.generate(model=model, prompt='', keep_alive=0)
    deadline = time.monotonic() + 10
    while client.ps().models and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.ps().models


def test_loading_past_the_limit_is_a_kernel_oom_kill_and_the_api_keeps_serving(container_sim):
    sim = container_sim()
    client = ollama.Client(host=sim.base_url, timeout=30)
    assert sim.container.attrs['HostConfig']['Memory'] == 288 * 1024 * 1024
    assert sim.container.attrs['HostConfig']['CgroupParent'] == sim.machine.cgroup_parent
    client.generate(model='llama3.2:1b', prompt='hi')
    # Ollama v0.12.6 checks the machine's MemAvailable, not the container's limit: a 131072
    # token KV cache (~540 MB here) passes the check and the kernel kills the runner.
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='qwen2.5:0.5b', prompt='hi', options={'num_ctx': 131072})
    assert caught.value.status_code == 500
    assert caught.value.error.startswith(EOF_PREFIX) and caught.value.error.endswith('EOF')
    sim.container.reload()  # Docker names the cgroup <parent>/<id>, Podman <parent>/libpod-<id>
    folder = container_cgroup(sim.container.id, int(sim.container.attrs['State']['Pid'])).directory
    assert folder.startswith(sim.machine.cgroup_dir)
    with open(f'{folder}/memory.oom_control', encoding='ascii') as handle:
        assert int(dict(line.split() for line in handle)['oom_kill']) == 1  # the kernel's
    assert sim.memory_usage_bytes() <= 288 * 1024 * 1024
    assert client.generate(model='llama3.2:1b', prompt='still here?').done
    sim.container.reload()
    assert sim.container.status == 'running'


def test_container_working_set_falls_after_keep_alive_zero_and_the_blob_stays_cached(
        container_sim):
    sim = container_sim()
    client = ollama.Client(host=sim.base_url, timeout=30)
    idle = sim.memory_working_set_bytes()
    idle_usage = sim.memory_usage_bytes()
    client.generate(model='llama3.2:1b', prompt='hi')
    # ~207 MB of weights, KV cache and graph (anonymous) plus what the 288 MiB limit leaves of
    # the blob's 165 MB of page cache (the kernel reclaims the rest).
    assert sim.memory_working_set_bytes() - idle > 190 * 1000 * 1000
    assert sim.memory_usage_bytes() - sim.memory_working_set_bytes() > 30 * 1000 * 1000
    _unload_and_wait(client, 'llama3.2:1b')
    assert sim.memory_working_set_bytes() - idle < 10 * 1000 * 1000
    # The blob's pages stay cached, charged to the container, as Linux charges them.
    assert sim.memory_usage_bytes() - idle_usage > 30 * 1000 * 1000


def test_container_memory_stays_up_with_the_leak_fault_until_restart(container_sim):
    sim = container_sim(extra_faults={'leak': {'llama3.2:1b': 1.0}})
    client = ollama.Client(host=sim.base_url, timeout=30)
    idle = sim.memory_working_set_bytes()
    client.generate(model='llama3.2:1b', prompt='hi')
    _unload_and_wait(client, 'llama3.2:1b')
    assert sim.memory_working_set_bytes() - idle > 190 * 1000 * 1000  # the leaked estimate
    sim.restart(timeout_s=5)
    assert sim.memory_working_set_bytes() - idle < 10 * 1000 * 1000
    assert client.generate(model='llama3.2:1b', prompt='after restart').done


def test_remove_takes_the_container_and_its_machine(docker_client):
    from shadowhound_llm_bench.sim.launcher import remove_container_simulator

    sim = start_container_simulator(docker_client=docker_client, scenario='small', port=0,
                                    name='sim-test-' + uuid.uuid4().hex[:8])
    machine = sim.machine
    assert os.path.isdir(machine.cgroup_dir) and os.path.isfile(machine.meminfo_path)
    host = machine.process
    remove_container_simulator(docker_client, sim.name)  # as `launcher remove --name` does
    assert host.wait(timeout=10) == 0
    assert not os.path.exists(machine.cgroup_dir) and not os.path.exists(machine.machine_dir)
    assert not os.path.exists(machine.blobs_dir)
    import docker.errors
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(sim.name)
