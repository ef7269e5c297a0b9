"""The container's memory limit follows the model budget as the ROS reserve moves (Docker API)."""

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from shadowhound_llm_bench.adapters.docker_container import DockerContainer
from shadowhound_llm_bench.adapters.simulated_host import SimulatedHost
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient
from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
from shadowhound_llm_bench.core.units import MIB
from shadowhound_llm_bench.engine.guard_building import build_memory_guard

from support.waiting import settled

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Nav2StandIn:
    """shadowhound_llm_bench.sim.growing_nav2 as a real process that grows and shrinks."""

    def __init__(self):
        self.process = subprocess.Popen(
            ["controller_server", "-m", "shadowhound_llm_bench.sim.growing_nav2",
             "--hold-mib", "16"], executable=sys.executable, cwd=REPO,
            env={**os.environ, "PYTHONPATH": REPO}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.process.stdout.readline().startswith("ok")

    def command(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().startswith("ok")

    def headroom(self):
        live = psutil.Process(self.process.pid).memory_info().rss
        return SimpleNamespace(live_bytes=live, reserve_bytes=live + 32 * MIB)

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=5)
        self.process.stdin.close()
        self.process.stdout.close()


@pytest.fixture
def nav2():
    stand_in = Nav2StandIn()
    yield stand_in
    stand_in.stop()


def _limit(docker_client, name):
    return int(docker_client.containers.get(name).attrs["HostConfig"]["Memory"])


def test_the_limit_follows_the_budget_down_and_up_never_under_the_loaded_model(
        thor_sim, docker_client, nav2):
    settings = preset_settings("adaptive", memory_scale=1 / 64, num_ctx=4096,
                               safety_buffer_bytes=64 * MIB, sample_period_s=0.1,
                               enforce_container_limit=True, preempt_on_breach=False)
    backend = DockerContainer(name=thor_sim.name, ollama_base_url=thor_sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=thor_sim.url)
    guard = build_memory_guard(settings=settings, client=client, backend=backend,
                               memory_scale=1 / 64,
                               host=SimulatedHost(total_bytes=700 * MIB,
                                                  system_reserve_bytes=160 * MIB),
                               headroom=nav2.headroom)
    try:
        def expected():
            reading = guard.monitor.latest()
            return reading.model_budget_bytes + settings.safety_buffer_bytes

        start = settled(lambda: _limit(docker_client, thor_sim.name),
                        lambda v: abs(v - expected()) < 24 * MIB)
        assert start < 896 * MIB  # lowered from the scenario's 56 GiB / 64 to the budget
        assert abs(start - expected()) < 24 * MIB

        nav2.command(f"grow {120 * MIB}")  # the reserve moves up: the limit goes down
        lower = settled(lambda: _limit(docker_client, thor_sim.name),
                        lambda v: v < start - 80 * MIB)
        assert lower < start - 80 * MIB

        nav2.command(f"shrink {120 * MIB}")  # and back: the limit goes up again
        higher = settled(lambda: _limit(docker_client, thor_sim.name),
                         lambda v: v > lower + 80 * MIB)
        assert higher > lower + 80 * MIB

        client.load("phi4:14b", keep_alive="5m", deadline_s=60)  # ~150 MiB here
        nav2.command(f"grow {400 * MIB}")  # the budget falls under what the model holds
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # the budget falls; the limit stays over the model
            working_set = guard.monitor.sample_now().container.working_set_bytes
            assert _limit(docker_client, thor_sim.name) >= working_set
            time.sleep(0.1)
        assert client.ps()  # still loaded: the kernel did not kill it, only an unload may
    finally:
        guard.close()
        client.close()
        backend.close()
