"""The project's Ollama simulator in a real Docker container, for the policy tests."""

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
