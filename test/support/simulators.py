"""
The Ollama simulator started for tests: as a child process, or as a local process container.

SimProcess runs `python -m shadowhound_llm_bench.sim` on a port it picks and reads the URL from
the line it prints once it listens. sim_process_container() runs it through the product's
ProcessContainer backend on a free port (a guard can restart and limit it).
"""

import contextlib
import os
import signal
import subprocess
import sys
from typing import Iterator, Optional, Sequence, Tuple

import httpx
import pytest

from shadowhound_llm_bench.common.net import free_port

from support.ollama_ps import unload_all

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_PREFIX = 'ollama_sim listening on '
# Starts the simulator; sleeps first when the file named by argv[1] holds seconds.
SLOW_START = """
import os, sys, time
if os.path.exists(sys.argv[1]):
    time.sleep(float(open(sys.argv[1]).read()))
os.execv(sys.executable, [sys.executable, "-m", "shadowhound_llm_bench.sim"] + sys.argv[2:])
"""


class SimProcess:
    """The simulator started as `python -m shadowhound_llm_bench.sim` in its own session."""

    def __init__(self, scenario: str = 'small', faults: str = '',
                 extra_args: Sequence[str] = ()) -> None:
        argv = [sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario', scenario,
                '--port', '0', '--quiet', *extra_args]
        if faults:
            argv += ['--faults', faults]
        self.process = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        line = self.process.stdout.readline()  # the simulator prints it once it listens
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f'simulator did not start: {line!r}')
        self.url = line[len(READY_PREFIX):].split()[0]

    def set_faults(self, faults: dict) -> None:
        """Switch faults on (or {'reset': True} off) at run time."""
        httpx.post(f'{self.url}/sim/faults', json=faults, timeout=5).raise_for_status()

    def request_count(self) -> int:
        """Count the requests the simulator has answered."""
        state = httpx.get(f'{self.url}/sim/state', timeout=5).json()
        return int(state['faults']['request_count'])

    def unload_all(self) -> None:
        """Unload every model and wait (10 s at most) until /api/ps lists none."""
        unload_all(self.url, timeout_s=5)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 10 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope='module')
def small_sim_process():
    """Start the simulator (small scenario) for a test module; stopped by its process group."""
    sim = SimProcess()
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def sim_process_container(name: str, scenario: str = 'small',
                          start_delay_file: Optional[str] = None) -> Iterator[Tuple[object, str]]:
    """
    Run the simulator as a started ProcessContainer on a free port; yield (backend, url).

    With start_delay_file, each (re)start first sleeps the seconds that file holds, if any.
    """
    from shadowhound_llm_bench.adapters.process_container import ProcessContainer

    port = free_port()
    url = f'http://127.0.0.1:{port}'
    head = ([sys.executable, '-c', SLOW_START, start_delay_file] if start_delay_file
            else [sys.executable, '-m', 'shadowhound_llm_bench.sim'])
    backend = ProcessContainer(
        name=name, ollama_base_url=url, cwd=REPO,
        argv=head + ['--scenario', scenario, '--port', str(port), '--quiet'])
    backend.start(deadline_s=30)
    try:
        yield backend, url
    finally:
        backend.close()


def sim_process_backend(scenario: str = 'small', extra_args: Sequence[str] = ()) -> dict:
    """Node parameters whose process backend starts the simulator on a free port."""
    port = free_port()
    return {
        'container.backend': 'process',
        'container.command': [sys.executable, '-m', 'shadowhound_llm_bench.sim', '--scenario',
                              scenario, '--port', str(port), '--quiet', *extra_args],
        'ollama_host': f'http://127.0.0.1:{port}',
    }


@pytest.fixture
def start_sim():
    """Start simulators (start_local_simulator's arguments) for one test; each stopped after."""
    from shadowhound_llm_bench.sim.launcher import start_local_simulator

    started = []

    def start(**kwargs):
        sim = start_local_simulator(**kwargs)
        started.append(sim)
        return sim
    yield start
    for sim in started:
        sim.stop()
