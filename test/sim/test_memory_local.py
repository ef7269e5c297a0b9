"""Runners really hold the predicted memory, and give it back on unload (local process)."""

import os
import time

import httpx
import ollama
import psutil

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.ollama_estimate import estimate_model_memory
from shadowhound_llm_bench.sim.scenario import load_scenario

from support.waiting import poll_until

MODEL = 'llama3.2:1b'


def _state(sim):
    return httpx.get(sim.base_url + '/sim/state', timeout=5).json()


def _runner(sim, model):
    return next(m for m in _state(sim)['scheduler']['models'] if m['name'] == model)


def test_runner_holds_the_scaled_estimate_and_the_blob_is_cached(start_sim):
    sim = start_sim(scenario='small')  # memory charged to the container (CPU-only Ollama)
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model=MODEL, prompt='hi', options={'num_ctx': 4096})
    runner = _runner(sim, MODEL)
    scenario = load_scenario('small')
    spec = builtin_catalog()[MODEL]
    estimate = estimate_model_memory(spec, num_ctx=4096, on_gpu=False)
    assert runner['footprint_bytes'] == estimate.total_bytes == client.ps().models[0].size
    predicted = scenario.physical_bytes(estimate.total_bytes)
    assert abs(runner['anon_bytes'] - predicted) <= 0.02 * predicted
    rss = psutil.Process(runner['pid']).memory_info().rss
    assert predicted <= rss <= predicted + 16 * 1024 * 1024  # interpreter text is shared
    # The blob was read through the page cache, charged to the container's cgroup (what its
    # 288 MiB limit leaves of the 165 MB: the kernel reclaims the rest).
    with open(os.path.join(sim.machine.cgroup_dir, 'ollama', 'memory.stat'),
              encoding='ascii') as handle:
        stat = dict(line.split() for line in handle)
    assert int(stat['total_rss']) >= predicted and int(stat['total_cache']) > 30 * 1000 * 1000


def test_keep_alive_zero_unloads_and_the_runner_memory_goes(start_sim, make_scenario):
    slow_unload = make_scenario(server={'unload_delay_s': 10.0})  # 1 s of wall time
    sim = start_sim(scenario=slow_unload)
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model=MODEL, prompt='hi')
    runner = psutil.Process(_runner(sim, MODEL)['pid'])
    assert runner.memory_info().rss > 150 * 1024 * 1024
    started = time.monotonic()
    reply = client.generate(model=MODEL, prompt='', keep_alive=0)
    assert reply.done_reason == 'unload'
    assert time.monotonic() - started < 0.5  # the reply does not wait for the unload
    assert MODEL in {m.model for m in client.ps().models}  # listed until it is gone
    assert poll_until(lambda: not client.ps().models)
    assert not runner.is_running() or runner.status() == psutil.STATUS_ZOMBIE
    assert _state(sim)['faults']['unload_cycles'] == 1


def test_leak_fault_keeps_the_memory_in_the_server(start_sim):
    sim = start_sim(scenario='small', extra_faults={'leak': {MODEL: 1.0}})
    client = ollama.Client(host=sim.base_url, timeout=30)
    server = psutil.Process(sim.pid)
    before = server.memory_info().rss
    client.generate(model=MODEL, prompt='hi')
    client.generate(model=MODEL, prompt='', keep_alive=0)
    assert poll_until(lambda: not client.ps().models)
    state = _state(sim)['scheduler']
    assert state['leaked_bytes'] >= 200 * 1000 * 1000  # llama3.2:1b's estimate at 1/8
    assert server.memory_info().rss - before >= 0.95 * state['leaked_bytes']


def test_keep_alive_expiry_unloads_by_itself(start_sim):
    sim = start_sim(scenario='small')
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model='qwen2.5:0.5b', prompt='hi', keep_alive='300ms')
    assert poll_until(lambda: not client.ps().models, timeout_s=5)


def test_max_loaded_models_evicts_the_least_recently_used(start_sim, make_scenario):
    one = make_scenario(server={'max_loaded_models': 1})
    sim = start_sim(scenario=one)
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model='qwen2.5:0.5b', prompt='hi')
    client.generate(model='llama3.2:1b', prompt='hi')
    assert [m.model for m in client.ps().models] == ['llama3.2:1b']


def test_server_stop_ends_every_runner(start_sim):
    sim = start_sim(scenario='small')
    client = ollama.Client(host=sim.base_url, timeout=30)
    client.generate(model='qwen2.5:0.5b', prompt='hi')
    runner = psutil.Process(_runner(sim, 'qwen2.5:0.5b')['pid'])
    sim.stop()
    assert poll_until(lambda: not runner.is_running() or runner.status() == psutil.STATUS_ZOMBIE)


def test_ros_load_stands_up_named_processes_with_the_scaled_bytes():
    from shadowhound_llm_bench.sim.ros_load import start_ros_load

    scenario = load_scenario('small')
    with start_ros_load(scenario='small') as load:
        assert set(load.pids) == {node.name for node in scenario.ros_nodes}
        for node in scenario.ros_nodes:
            process = psutil.Process(load.pids[node.name])
            assert process.name() == node.name[:15]
            assert process.memory_info().rss >= scenario.physical_bytes(node.bytes)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != 'zombie'
                   for pid in load.pids.values())
