"""
Kept values belong to the server they were measured on: the simulator's are not the real one's.

The simulator answers /api/version with its own version (0.12.6-shb-sim), so a calibration,
footprint or cost measured against it on this machine is never used for a real server, and an
API-only run against the real server reads Ollama's /api/ps sizes and claims no memory source.
"""

import json

import pytest

from shadowhound_llm_bench.adapters.api_only_container import ApiOnlyContainer
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.engine.footprint_cache import FootprintCache
from shadowhound_llm_bench.engine.calibration_store import CALIBRATION_FILE_NAME, CalibrationStore
from shadowhound_llm_bench.engine.guard_building import build_memory_guard
from shadowhound_llm_bench.engine.memory_guard import Proceed
from shadowhound_llm_bench.engine.server_identity import server_key_of

from support.simulated_machine import OllamaCgroup

SIM_MODEL, REAL_MODEL = 'phi4:14b', 'shb-tiny:f16'


def _settings(num_ctx=4096, memory_scale=1.0):
    return preset_settings('default', memory_scale=memory_scale, order='given', num_ctx=num_ctx,
                           unload_deadline_s=10.0, memory_wait_s=0.5, sample_period_s=0.1,
                           restart_when_cleanup_fails=False, drop_caches='never')


@pytest.fixture
def simulator():
    """Start a local simulator on its simulated machine (root and cgroup v1)."""
    from shadowhound_llm_bench.sim.launcher import start_local_simulator
    from shadowhound_llm_bench.sim.machine import can_create_cgroups
    if not can_create_cgroups():
        pytest.skip('needs root and cgroup v1 to build the simulated machine')
    sim = start_local_simulator(scenario='thor_cgroup')
    yield sim
    sim.stop()


def test_a_calibration_made_on_the_simulator_is_not_used_for_the_real_server(
        simulator, real_ollama_server, tmp_path):
    from shadowhound_llm_bench.sim.scenario import load_scenario
    state = tmp_path / 'footprints.json'
    machine = simulator.machine
    scenario = load_scenario('thor_cgroup')
    sim_backend = OllamaCgroup(machine.sub_cgroup('ollama'), name='ollama')
    with OllamaClient(base_url=simulator.base_url, request_timeout_s=60) as client:
        guard = build_memory_guard(
            settings=_settings(memory_scale=scenario.memory_scale), client=client,
            memory_scale=scenario.memory_scale, backend=sim_backend,
            footprint_cache_path=str(state),
            fixed_ros_reserve_bytes=scenario.node_parameters['ros_reserve_bytes'],
            memory_sources=MemorySourceSettings(
                meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
                drop_caches_path=str(tmp_path / 'drop_caches')))
        try:
            assert guard.calibrate([SIM_MODEL]) and guard.calibration is not None
            sim_key = server_key_of(sim_backend, client)
        finally:
            guard.close()
    assert sim_key.ollama_version == '0.12.6-shb-sim'
    (entry,) = json.loads((tmp_path / CALIBRATION_FILE_NAME).read_text())['machines'].values()
    assert entry['server']['ollama_version'] == '0.12.6-shb-sim'

    # The same backend kind and name in front of the real server: only the release differs.
    with OllamaClient(base_url=real_ollama_server.base_url, request_timeout_s=60) as client:
        real_key = server_key_of(OllamaCgroup(machine.sub_cgroup('ollama'), name='ollama'),
                                 client)
        assert real_key.ollama_version == real_ollama_server.version
        assert real_key.backend == sim_key.backend and real_key.target == sim_key.target
        machine_reading = guard.calibration.machine
        assert CalibrationStore(str(tmp_path / CALIBRATION_FILE_NAME), sim_key).get(
            machine_reading) is not None
        assert CalibrationStore(str(tmp_path / CALIBRATION_FILE_NAME), real_key).get(
            machine_reading) is None
        FootprintCache(str(state), sim_key).put(REAL_MODEL, digest='d', num_ctx=4096,
                                                footprint_bytes=123)
        assert FootprintCache(str(state), real_key).get(REAL_MODEL, digest='d',
                                                        num_ctx=4096) is None

        # The real run (API only, as a new user starts it) finds nothing of the simulator's.
        api_only = ApiOnlyContainer(name='ollama', client=client)
        real = build_memory_guard(
            settings=_settings(), client=client, backend=api_only,
            footprint_cache_path=str(state),
            memory_sources=MemorySourceSettings(drop_caches_path=str(tmp_path / 'drop')))
        try:
            assert real.calibration is None and real.calibrate([REAL_MODEL]) is None
            plan = real.plan([REAL_MODEL]).memory_sources
            assert 'calibrated' not in plan and 'cgroup' not in plan, plan
            assert plan.startswith('ollama_ps_sizes')
            assert isinstance(real.before_model(REAL_MODEL), Proceed)
            client.load(REAL_MODEL, keep_alive='1m', options={'num_ctx': 4096}, deadline_s=60)
            real.after_model(REAL_MODEL)
            record = real.record(REAL_MODEL)
            client.unload(REAL_MODEL)
        finally:
            real.close()
    assert record.memory_source == 'ollama_ps_sizes'
    assert record.prediction_source == 'metadata'  # not the simulator's kept footprint
    assert not [d for d in real.decisions() if 'cgroup' in d.reason and d.action == 'calibrate']
