"""The simulated machine's Ollama cgroup as a container backend, for guards over a local run."""

from shadowhound_llm_bench.adapters.container_backend import ContainerControlUnavailable
from shadowhound_llm_bench.adapters.docker_container import CgroupMemoryFiles
from shadowhound_llm_bench.core.memory.memory_reading import ContainerState


class OllamaCgroup:
    """The Ollama cgroup of a simulated machine as a container backend (no restart here)."""

    def __init__(self, directory, name='ollama-cgroup'):
        self.name = name
        self.files = CgroupMemoryFiles(directory)

    def sample(self):
        """Read the cgroup files now."""
        return self.files.read()

    def restart(self, *, deadline_s):
        """Refuse: the local simulator is not restarted by these tests."""
        raise ContainerControlUnavailable('the local simulator is not restarted in this test')

    def state(self):
        """Report running."""
        return ContainerState.RUNNING

    def set_memory_limit(self, limit_bytes):
        """Leave the scenario's limit."""

    def close(self):
        """Nothing to release."""
