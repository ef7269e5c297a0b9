"""The referee live beside the unified-memory simulator: it sees a load, the pool, a drop."""

import os
import statistics
import time

import httpx
import pytest
from referee import Referee, Watch, judge_headroom, leftovers, memory_back_s

from shadowhound_llm_bench.sim.machine import can_create_cgroups
from shadowhound_llm_bench.sim.machine_host import STATE_NAME

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'benchmarks')
MODEL = 'deepseek-r1:7b'  # ~90 MiB of device memory on thor at 1/64
MIB = 1 << 20


def _until(referee, predicate, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [s for s in referee.samples() if predicate(s)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f'the referee never saw it; last sample {referee.samples()[-1]}')


@pytest.mark.skipif(not can_create_cgroups(), reason='needs root and a memory cgroup v1')
def test_referee_sees_device_memory_the_pool_and_the_drop(tmp_path):
    from shadowhound_llm_bench.sim.launcher import start_local_simulator

    with start_local_simulator(scenario='thor', ready_timeout_s=60.0) as sim:
        machine = sim.machine
        watch = Watch(machine_cgroup=machine.cgroup_dir, server_pid=sim.pid,
                      driver_state=os.path.join(machine.machine_dir, STATE_NAME))
        with Referee(str(tmp_path / 'truth.jsonl'), watch, period_s=0.05) as referee:
            idle = referee.wait_next()
            assert idle is not None and idle.machine_limit_bytes == machine.total_bytes
            assert not idle.runners and idle.device_bytes == 0
            httpx.post(f'{sim.base_url}/api/generate', timeout=120,
                       json={'model': MODEL, 'prompt': '', 'keep_alive': '5m'})
            loaded = _until(referee, lambda s: s.runners and s.device_bytes > 50 * MIB)
            assert loaded.runners[0][1] == 'ollama-runner'
            assert loaded.allocatable_bytes < idle.allocatable_bytes - 50 * MIB
            unloaded_at = referee.mark('unload')
            httpx.post(f'{sim.base_url}/api/generate', timeout=60,
                       json={'model': MODEL, 'prompt': '', 'keep_alive': 0})
            pooled = _until(referee, lambda s: s.t > unloaded_at and not s.runners
                            and s.device_bytes == 0 and s.pool_bytes > 50 * MIB)
            # unified memory: nothing loaded, and yet the pages are not back
            assert pooled.allocatable_bytes < idle.allocatable_bytes - 50 * MIB
            dropped_at = referee.mark('drop')
            machine.drop_caches()
            _until(referee, lambda s: s.t > dropped_at and s.pool_bytes == 0)
            referee.wait_next()
        samples = referee.samples()
    assert leftovers(samples).nothing_loaded and leftovers(samples).pool_bytes == 0
    gaps = [b.t - a.t for a, b in zip(samples, samples[1:])]
    assert statistics.median(gaps) <= 0.1  # at least 10 Hz, even on a busy machine
    back = memory_back_s(samples, from_t=unloaded_at, model_bytes_at_most=16 * MIB)
    assert back is not None and unloaded_at + back > dropped_at  # only the drop gave it back
    # a reserve set just under the idle room: the load breached it, the drop ended the breach
    verdict = judge_headroom(samples, reserve_bytes=idle.allocatable_bytes - 40 * MIB,
                             period_s=0.05, unload_s=1.0)
    assert verdict.breaches and verdict.breaches[-1].end_t is not None
    assert verdict.breaches[-1].end_t > dropped_at
