"""Helpers of the platform tests: the simulator started with a fake Thor tree."""

import os
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_PREFIX = "ollama_sim listening on "


class SimWithThor:
    """The simulator as a process, writing a fake Thor tree under root."""

    def __init__(self, root: str, *, scenario: str = "thor", ambient_c: float = 35.0,
                 faults: str = "") -> None:
        argv = [sys.executable, "-m", "shadowhound_llm_bench.sim", "--scenario", scenario,
                "--port", "0", "--quiet", "--platform-root", root,
                "--platform-ambient-c", str(ambient_c)]
        if faults:
            argv += ["--faults", faults]
        self.root = root
        self.process = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        line = self.process.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = line[len(READY_PREFIX):].split()[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process.stdout.close()
