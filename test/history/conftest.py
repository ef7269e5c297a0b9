"""History test fixtures: the Ollama simulator as a local process for the CLI tests."""

import os
import signal
import subprocess
import sys

import httpx
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_PREFIX = "ollama_sim listening on "


class HistorySim:
    """`python -m shadowhound_llm_bench.sim --scenario small`, stopped by its process group."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", "small",
             "--port", "0", "--quiet"], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        line = self.process.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = line[len(READY_PREFIX):].split()[0]

    def set_faults(self, faults: dict) -> None:
        httpx.post(f"{self.url}/sim/faults", json=faults, timeout=5).raise_for_status()

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
def history_sim():
    sim = HistorySim()
    try:
        yield sim
    finally:
        sim.stop()
