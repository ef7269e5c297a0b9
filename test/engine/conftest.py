"""Engine test fixtures: the Ollama simulator as a local process, and a scripted NDJSON server."""

import os

import pytest

from scripted_ollama import ScriptedOllama
from support.ros_domains import area_domain_id
from support.simulators import sim_process_container
# The shared simulator fixture (small scenario, one per module), under the name used here.
from support.simulators import small_sim_process as sim  # noqa: F401

os.environ.setdefault("ROS_DOMAIN_ID", str(area_domain_id(30)))


@pytest.fixture
def clean_sim(sim):  # noqa: F811 - the fixture imported above
    """Return the shared simulator with no faults and no model loaded."""
    sim.set_faults({"reset": True})
    sim.unload_all()
    return sim


@pytest.fixture
def scripted():
    server = ScriptedOllama()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def guarded_sim(tmp_path):
    """Start a simulator as a ProcessContainer with the memory guard of the default preset."""
    from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
    from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
    from shadowhound_llm_bench.engine.guard_building import build_memory_guard

    with sim_process_container("engine-sim") as (backend, url):
        backend.set_memory_limit(256 * 1024 * 1024)  # the small scenario's container, scaled
        client = OllamaClient(base_url=url)
        settings = preset_settings("default", memory_scale=1 / 8, num_ctx=4096,
                                   sample_period_s=0.2, safety_buffer_bytes=16 * 1024 * 1024)
        guard = build_memory_guard(settings=settings, client=client, backend=backend,
                                   memory_scale=1 / 8,
                                   footprint_cache_path=str(tmp_path / "footprints.json"))
        try:
            yield client, guard
        finally:
            guard.close()
            client.close()
