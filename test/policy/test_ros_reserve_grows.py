"""A growing ROS reserve mid-run: the loaded model is stopped and unloaded, the next skipped."""

import signal
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
from shadowhound_llm_bench.engine.memory_guard_api import Proceed, Skip

GROWING_NODE = """
import sys
held = []
for line in sys.stdin:
    size = int(line)
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    held.append(block)
    print("ok", flush=True)
"""


class GrowingRosNode:
    """A real child process standing in for a Nav2 node whose costmap grows."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", GROWING_NODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def grow(self, n_bytes):
        self.process.stdin.write(f"{n_bytes}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def headroom(self):
        """ROS memory as RosHeadroom reports it: live, reserve."""
        live = psutil.Process(self.process.pid).memory_info().rss
        return SimpleNamespace(live_bytes=live, reserve_bytes=max(64 * MIB, live))

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=5)


@pytest.fixture
def ros_node():
    node = GrowingRosNode()
    yield node
    node.stop()


def test_a_growing_ros_reserve_stops_the_model_and_skips_the_next(thor_sim, docker_client,
                                                                  ros_node):
    settings = preset_settings("adaptive", memory_scale=1 / 64, num_ctx=4096,
                               safety_buffer_bytes=64 * MIB, sample_period_s=0.1,
                               unload_deadline_s=5.0, memory_wait_s=0.3,
                               preempt_on_breach=False)  # the check between two requests
    backend = DockerContainer(name=thor_sim.name, ollama_base_url=thor_sim.url,
                              docker_client=docker_client)
    client = OllamaClient(base_url=thor_sim.url, request_timeout_s=30)
    guard = build_memory_guard(
        settings=settings, memory_scale=1 / 64, client=client, backend=backend,
        host=SimulatedHost(total_bytes=700 * MIB, system_reserve_bytes=160 * MIB),
        headroom=ros_node.headroom)
    try:
        assert isinstance(guard.before_model("phi4:14b"), Proceed)
        client.load("phi4:14b", keep_alive="5m", deadline_s=30)
        assert guard.check_pressure("phi4:14b") is None

        ros_node.grow(320 * MIB)  # Nav2 needs more memory now: the robot wins
        end = time.monotonic() + 5
        reason = None
        while reason is None and time.monotonic() < end:
            reason = guard.check_pressure("phi4:14b")
            time.sleep(0.05)
        assert reason and "abort limit" in reason and "ROS live" in reason

        guard.after_model("phi4:14b")
        phi4 = guard.record("phi4:14b")
        assert phi4.abort_reason == reason
        assert phi4.unloads == 1 and phi4.cleanup_successful
        assert client.ps() == []

        skip = guard.before_model("qwen2.5-coder:32b")
        assert isinstance(skip, Skip)
        assert "cannot fit" in skip.reason and "ROS reserve" in skip.reason
        assert guard.record("qwen2.5-coder:32b").skip_reason == skip.reason
        assert isinstance(guard.before_model("deepseek-r1:7b"), Proceed)  # a small one fits
        actions = [d.action for d in guard.decisions()]
        assert actions.count("abort") == 1 and "skip" in actions
    finally:
        guard.close()
        backend.close()
