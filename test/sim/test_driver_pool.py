"""The GPU driver's pool on the unified machine: kept for its server, released by 2/3 or exit."""

import ollama
import pytest

from shadowhound_llm_bench.sim.catalog import builtin_catalog
from shadowhound_llm_bench.sim.machine import can_create_cgroups, start_machine
from shadowhound_llm_bench.sim.scenario import load_scenario

from support.waiting import poll_until

from test_unified_memory import (  # noqa: F401
    MODEL, SCALE, _device_bytes, _unload, load_one, unified)

pytestmark = pytest.mark.skipif(not can_create_cgroups(),
                                reason='needs root and a memory cgroup v1 hierarchy')


def test_a_drop_of_1_leaves_the_pool_and_a_drop_of_2_releases_it(
        start_sim, unified):  # noqa: F811 - the fixture imported above
    sim, client, idle, device, _ = load_one(start_sim, unified)
    machine = sim.machine
    _unload(client, MODEL, sim)
    assert machine.state()['pool_bytes'] == device
    machine.drop_caches(level=1)  # the page cache only
    blob = int(builtin_catalog()[MODEL].size_bytes * SCALE)
    # meminfo is republished every 50 ms from the cgroup's memory.stat, whose counters the kernel
    # may flush a little later than the drop: the cached pages must go, within seconds.
    assert poll_until(
        lambda: machine.meminfo_bytes()['Cached'] - idle['Cached'] < 0.05 * blob), (
            machine.meminfo_bytes()['Cached'] - idle['Cached'], blob)
    assert machine.state()['pool_bytes'] == device
    machine.drop_caches(level=2)  # the shrinkers: the driver lets its pool go
    assert machine.state()['pool_bytes'] == 0
    assert machine.state()['drop_caches_by_level'] == {'1': 1, '2': 1}


def test_the_pool_goes_with_the_server_that_held_the_device(
        start_sim, unified):  # noqa: F811 - the fixture imported above
    # The seed on Thor: "Container memory after unload: 31GiB - only 1GB freed ... container
    # restart clears this".
    scenario = unified()
    with start_machine(load_scenario(scenario)) as machine:
        sim = start_sim(scenario=scenario, machine=machine)
        client = ollama.Client(host=sim.base_url, timeout=30)
        client.generate(model=MODEL, prompt='hi')
        device, _ = _device_bytes(MODEL)
        _unload(client, MODEL, sim)
        held = machine.meminfo_bytes()
        assert machine.state()['pool_bytes'] == device  # the unload returned nothing
        sim.stop()  # the server exits, as in a container restart; the machine stays
        assert poll_until(lambda: machine.state()['pool_bytes'] == 0)
        assert machine.meminfo_bytes()['MemFree'] - held['MemFree'] >= 0.9 * device
        again = start_sim(scenario=scenario, machine=machine)
        client = ollama.Client(host=again.base_url, timeout=30)
        assert client.generate(model=MODEL, prompt='hi').done
