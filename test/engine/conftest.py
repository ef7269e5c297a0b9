"""Engine test fixtures: the Ollama simulator as a local process, and a scripted NDJSON server."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from shadowhound_llm_bench.common.net import free_port

from scripted_ollama import ScriptedOllama

os.environ.setdefault(
    "ROS_DOMAIN_ID", str((30 + int(os.environ.get("SHB_TEST_DOMAIN_SHIFT", "0"))) % 232))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_PREFIX = "ollama_sim listening on "


class SimProcess:
    """The simulator started as `python -m shadowhound_llm_bench.sim` in its own session."""

    def __init__(self, scenario: str = "small", faults: str = "") -> None:
        argv = [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", scenario,
                "--port", "0", "--quiet"]
        if faults:
            argv += ["--faults", faults]
        self.process = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        line = self.process.stdout.readline()  # the simulator prints it once it listens
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = line[len(READY_PREFIX):].split()[0]

    def set_faults(self, faults: dict) -> None:
        httpx.post(f"{self.url}/sim/faults", json=faults, timeout=5).raise_for_status()

    def request_count(self) -> int:
        state = httpx.get(f"{self.url}/sim/state", timeout=5).json()
        return int(state["faults"]["request_count"])

    def unload_all(self) -> None:
        for model in httpx.get(f"{self.url}/api/ps", timeout=5).json().get("models", []):
            httpx.post(f"{self.url}/api/generate", timeout=5,
                       json={"model": model["name"], "keep_alive": 0})
        end = time.monotonic() + 10
        while httpx.get(f"{self.url}/api/ps", timeout=5).json().get("models") and \
                time.monotonic() < end:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def sim():
    process = SimProcess()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def clean_sim(sim):
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
    from shadowhound_llm_bench.adapters.process_container import ProcessContainer
    from shadowhound_llm_bench.core.decider.policy_settings import preset_settings
    from shadowhound_llm_bench.engine.guard_building import build_memory_guard

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ProcessContainer(
        name="engine-sim", ollama_base_url=url, cwd=REPO,
        argv=[sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", "small",
              "--port", str(port), "--quiet"])
    backend.start(deadline_s=30)
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
        backend.close()
