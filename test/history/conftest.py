"""History test fixtures: the Ollama simulator as a local process for the CLI tests."""

import pytest

from support.simulators import SimProcess


@pytest.fixture(scope="module")
def history_sim():
    """Start the simulator (small scenario) for a test module; stopped by its process group."""
    sim = SimProcess()
    try:
        yield sim
    finally:
        sim.stop()
