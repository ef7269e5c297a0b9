"""The project's Ollama simulator in a real Docker container, and a guard over it."""

import json
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import httpx

from shadowhound_llm_bench.sim.launcher import start_container_simulator


@dataclass
class SimContainer:
    """A running simulator container: its name, Ollama URL and the launcher's handle."""

    name: str
    url: str
    handle: Any

    def set_faults(self, faults: dict) -> None:
        """Switch simulator faults at run time (a container restart forgets them)."""
        httpx.post(f"{self.url}/sim/faults", json=faults, timeout=5).raise_for_status()

    def remove(self) -> None:
        self.handle.remove()


def start_sim_container(docker_client, *, scenario: str, mem_limit_bytes: Optional[int],
                        faults: str = "") -> SimContainer:
    """Start a uniquely named simulator container; faults given here survive restarts."""
    name = f"policy-test-sim-{uuid.uuid4().hex[:8]}"
    handle = start_container_simulator(
        docker_client=docker_client, name=name, scenario=scenario, port=0,
        mem_limit_bytes=mem_limit_bytes, extra_faults=json.loads(faults) if faults else None)
    return SimContainer(name=name, url=f"http://127.0.0.1:{handle.port}", handle=handle)


def guard_on_sim_container(sim: SimContainer, scenario, docker_client, settings, tmp_path,
                           source: str):
    """
    Build (guard, client, backend) over a simulator container of a scenario.

    The machine is read as a robot is: its meminfo and one cgroup source of the container
    (what calibration chooses on that machine).
    """
    from shadowhound_llm_bench.adapters.docker_container import DockerContainer
    from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
    from shadowhound_llm_bench.core.memory.memory_sources import MemorySourceSettings
    from shadowhound_llm_bench.engine.guard_building import build_memory_guard

    backend = DockerContainer(name=sim.name, ollama_base_url=sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=sim.url, request_timeout_s=30)
    machine = sim.handle.machine
    sources = MemorySourceSettings(
        meminfo_path=machine.meminfo_path, nvidia_smi_command=machine.nvidia_smi_path,
        drop_caches_path=machine.drop_caches_path, sources=(source,))
    guard = build_memory_guard(
        settings=settings, memory_scale=scenario.memory_scale, client=client, backend=backend,
        fixed_ros_reserve_bytes=scenario.node_parameters["ros_reserve_bytes"],
        footprint_cache_path=str(tmp_path / "footprints.json"), memory_sources=sources)
    return guard, client, backend
