"""History test fixtures: the Ollama simulator as a local process for the CLI tests."""

# The shared simulator fixture, under the name the history tests use.
from support.simulators import small_sim_process as history_sim  # noqa: F401
