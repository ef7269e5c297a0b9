"""
The unified-memory machine (Jetson Thor), as the product would see it.

Device memory outside the container, page cache of blobs, the driver's pool until drop_caches,
Ollama's MemFree refusal, the nvidia-smi stand-in, a kernel OOM in the machine cgroup.

Real parts: a machine memory cgroup of the scenario's size, the GPU-driver host process holding
real pages in its own cgroup, runners reading blob files through the kernel's page cache.
"""

import os
import re
import subprocess

import httpx
import ollama
import pytest

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.fit_check import human_bytes2
from shadowhound_llm_bench.sim.machine import can_create_cgroups
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory
from shadowhound_llm_bench.sim.runner import RunnerProcess

pytestmark = pytest.mark.skipif(not can_create_cgroups(),
                                reason='needs root and a memory cgroup v1 hierarchy')

MODEL = 'llama3.2:1b'
SCALE = 1 / 8
MB = 1000 ** 2
REFUSAL = re.compile(r'^model requires more system memory \((\d+\.\d (?:GiB|MiB))\) than is '
                     r'available \((\d+\.\d (?:GiB|MiB|KiB)|\d+ B)\)$')


@pytest.fixture
def unified(make_scenario):
    """Small models on a unified-memory machine of 8 GiB (1 GiB here), no container limit."""
    def make(**machine):
        fields = {'memory_model': 'unified', 'runner_cpu_share': '64MiB', 'container_limit': 0}
        fields.update(machine)
        return make_scenario(machine=fields)
    return make


def _oom_kills(folder):
    with open(os.path.join(folder, 'memory.oom_control'), encoding='ascii') as handle:
        return int(dict(line.split() for line in handle)['oom_kill'])


def _wait(predicate, sim):
    for _ in range(300):
        if predicate():
            return True
        httpx.get(sim.base_url + '/api/version', timeout=5)  # a short pause
    return False


def _usage(folder):
    with open(os.path.join(folder, 'memory.usage_in_bytes'), encoding='ascii') as handle:
        return int(handle.read())


def _device_bytes(model, num_ctx=4096):
    estimate = estimate_model_memory(builtin_catalog()[model], num_ctx=num_ctx)
    return int(estimate.total_bytes * SCALE), estimate


def load_one(start_sim, unified):
    """Start a simulator of the unified machine and load MODEL; meminfo from before the load."""
    sim = start_sim(scenario=unified())
    client = ollama.Client(host=sim.base_url, timeout=30)
    before = sim.machine.meminfo_bytes()
    client.generate(model=MODEL, prompt='hi')
    device, estimate = _device_bytes(MODEL)
    return sim, client, before, device, estimate


def _unload(client, model, sim):
    client.generate(model=model, prompt='', keep_alive=0)
    assert _wait(lambda: not client.ps().models, sim)


def test_device_memory_lowers_memfree_but_is_not_charged_to_the_container(start_sim, unified):
    sim, client, before, device, estimate = load_one(start_sim, unified)
    machine = sim.machine
    entry = client.ps().models[0]
    assert entry.size == entry.size_vram == estimate.total_bytes  # an iGPU: all of it is VRAM
    after = machine.meminfo_bytes()
    blob = int(builtin_catalog()[MODEL].size_bytes * SCALE)
    assert before['MemFree'] - after['MemFree'] >= device + blob
    ollama_cgroup = os.path.join(machine.cgroup_dir, 'ollama')
    assert _usage(ollama_cgroup) < device  # the CPU-side share and the blob's cache only
    assert _usage(os.path.join(machine.cgroup_dir, 'driver')) >= device
    assert machine.state()['device_bytes'] == device


def test_blob_stays_cached_and_the_driver_pool_holds_until_drop_caches(start_sim, unified):
    sim, client, idle, device, _ = load_one(start_sim, unified)
    machine = sim.machine
    blob = int(builtin_catalog()[MODEL].size_bytes * SCALE)
    _unload(client, MODEL, sim)
    unloaded = machine.meminfo_bytes()
    assert unloaded['Cached'] - idle['Cached'] >= 0.95 * blob  # the blob's pages stay cached
    assert machine.state()['pool_bytes'] == device  # freed device memory stays in the pool
    assert idle['MemFree'] - unloaded['MemFree'] >= device + 0.95 * blob
    with open(machine.drop_caches_path, 'w', encoding='ascii') as handle:
        handle.write('3\n')  # as the product would
    assert _wait(lambda: machine.state()['drop_caches_count'] == 1, sim)
    assert machine.state()['pool_bytes'] == 0
    # The cgroup's cache counter may be flushed a little after the drop: wait for it.
    assert _wait(lambda: machine.meminfo_bytes()['Cached'] - idle['Cached'] < 0.05 * blob, sim)
    dropped = machine.meminfo_bytes()
    assert idle['MemFree'] - dropped['MemFree'] < 0.1 * device


def test_ollama_refuses_when_memfree_is_short_although_memavailable_suffices(start_sim, unified):
    sim = start_sim(scenario=unified())
    machine = sim.machine
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model=MODEL, prompt='hi', keep_alive=-1)
    client.generate(model='deepseek-r1:1.5b', prompt='hi', keep_alive=-1)
    device, estimate = _device_bytes('qwen2.5:0.5b', num_ctx=32768)
    meminfo = machine.meminfo_bytes()
    assert meminfo['MemFree'] < device <= meminfo['MemAvailable']
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model='qwen2.5:0.5b', prompt='hi', options={'num_ctx': 32768})
    assert caught.value.status_code == 500
    match = REFUSAL.match(caught.value.error)
    assert match, caught.value.error
    assert match.group(1) == human_bytes2(estimate.total_bytes)
    assert not client.ps().models  # Ollama evicted everything idle before refusing
    assert machine.state()['pool_bytes'] > 0  # ... and the driver kept it
    machine.drop_caches()
    assert client.generate(model='qwen2.5:0.5b', prompt='hi', options={'num_ctx': 32768}).done


def test_nvidia_smi_stand_in_lists_runners_in_mib(start_sim, unified):
    sim = start_sim(scenario=unified())
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model=MODEL, prompt='hi')
    runner_pid = httpx.get(sim.base_url + '/sim/state', timeout=5).json()[
        'scheduler']['models'][0]['pid']
    query = [sim.machine.nvidia_smi_path, '--query-compute-apps=pid,process_name,used_memory',
             '--format=csv,noheader,nounits']
    output = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True)
    rows = [line.split(', ') for line in output.stdout.splitlines()]
    device, _ = _device_bytes(MODEL)
    assert rows == [[str(runner_pid), 'ollama-runner', str(device // 2 ** 20)]]
    _unload(client, MODEL, sim)
    again = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True)
    assert again.stdout == ''  # pooled memory belongs to no process
    wrong = subprocess.run([sim.machine.nvidia_smi_path, '--query-gpu=memory.used'],
                           capture_output=True, text=True, timeout=10)
    assert wrong.returncode != 0 and 'query-compute-apps' in wrong.stderr


def test_kernel_oom_in_the_machine_cgroup_picks_by_oom_score(start_sim, unified):
    sim = start_sim(scenario=unified())
    machine = sim.machine
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model=MODEL, prompt='hi', keep_alive=-1)
    runner_pid = httpx.get(sim.base_url + '/sim/state', timeout=5).json()[
        'scheduler']['models'][0]['pid']
    # A backstop marks the runner as the first victim (raising needs no privilege); the
    # driver gives the runner's device memory the same score.
    with open(f'/proc/{runner_pid}/oom_score_adj', 'w', encoding='ascii') as handle:
        handle.write('1000')
    assert _wait(lambda: [c['oom_score_adj'] for c in machine.state()['contexts']] == [1000],
                 sim)
    # A ROS process grows past what the machine has left: a real OOM kill in the machine
    # cgroup, whose victim the kernel chooses by oom_score: the model's GPU context.
    procs = machine.sub_cgroup('ros') + '/cgroup.procs'
    hog = RunnerProcess(model='hog', name='controller_serv', resident_bytes=780 * MB,
                        load_wall_s=0.0, cgroup_procs=procs, oom_score_adj=None)
    try:
        assert hog.wait_ready(timeout_s=60) is None
        assert _oom_kills(os.path.join(machine.cgroup_dir, 'driver')) == 1  # the victim's
        assert _oom_kills(os.path.join(machine.cgroup_dir, 'ros')) == 0
        assert hog.alive()
        assert _wait(lambda: not client.ps().models, sim)  # the runner died with its context
        assert _wait(lambda: machine.state()['device_bytes'] == 0, sim)
    finally:
        hog.stop()


def test_without_cgroups_the_accounting_is_emulated_and_says_so(start_sim, unified):
    from shadowhound_llm_bench.sim.machine import start_machine
    from shadowhound_llm_bench.sim.scenario import load_scenario

    path = unified()
    with start_machine(load_scenario(path), use_cgroups=False) as machine:
        assert machine.cgroup_dir == '' and machine.state()['accounting'] == 'emulated'
        sim = start_sim(scenario=path, machine=machine)
        client = ollama.Client(host=sim.base_url, timeout=30)
        before = machine.meminfo_bytes()
        client.generate(model=MODEL, prompt='hi')
        device, _ = _device_bytes(MODEL)
        blob = int(builtin_catalog()[MODEL].size_bytes * SCALE)
        assert _wait(lambda: before['MemFree'] - machine.meminfo_bytes()['MemFree']
                     >= device + blob, sim)
        sim.stop()


def test_the_system_reserve_is_held_outside_every_process_and_released_with_the_machine():
    from shadowhound_llm_bench.sim.machine import start_machine, system_reserve_path
    from shadowhound_llm_bench.sim.scenario import load_scenario

    scenario = load_scenario('thor')
    reserve = scenario.physical_bytes(scenario.system_reserve_bytes)
    with start_machine(scenario) as machine:
        held = _usage(os.path.join(machine.cgroup_dir, 'system'))
        assert reserve <= held <= reserve + (1 << 20)
        with open(os.path.join(machine.cgroup_dir, 'system', 'cgroup.procs')) as handle:
            assert not handle.read().strip()  # no process the OOM killer could end
        fields = machine.meminfo_bytes()
        # not reclaimable: MemAvailable stays under the total less the reserve
        assert fields['MemAvailable'] <= machine.total_bytes - reserve
        path = system_reserve_path(machine.name)
        assert os.path.getsize(path) == reserve
    assert not os.path.exists(path)
