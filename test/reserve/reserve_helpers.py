"""Real rclpy processes that hold known memory, started and stopped for the reserve tests."""

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from shadowhound_llm_bench.adapters.ros_processes import RosProcessScan

NODE_SCRIPT = Path(__file__).with_name('ros_memory_node.py')
MIB = 2 ** 20
START_TIMEOUT_S = 60.0
GROW_TIMEOUT_S = 20.0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RosMemoryProcess:
    """One started ros_memory_node.py process, stopped by its process group."""

    def __init__(self, popen: subprocess.Popen, label: str, log_path: Path) -> None:
        self.popen = popen
        self.label = label
        self.log_path = log_path
        self._selector = selectors.DefaultSelector()
        self._selector.register(popen.stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for(self, word: str, timeout_s: float) -> int:
        """Block until the process prints '<word> <bytes>'; return the bytes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = self.popen.stdout.readline()
            if not line:
                break
            parts = line.split()
            if len(parts) == 2 and parts[0] == word:
                return int(parts[1])
        raise AssertionError(
            f'{self.label} did not print {word!r} within {timeout_s} s; '
            f'log: {self.log_path.read_text()[-2000:]}')

    def grow(self) -> int:
        """Make the process hold --grow-mb more; return what it holds in total."""
        os.kill(self.pid, signal.SIGUSR1)
        return self.wait_for('grown', GROW_TIMEOUT_S)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._selector.close()
        self.popen.stdout.close()


class RosMemoryLauncher:
    """Starts ros_memory_node.py processes in one ROS domain and stops them all at the end."""

    def __init__(self, tmp_dir: Path, domain_id: int) -> None:
        self.tmp_dir = tmp_dir
        self.env = dict(os.environ)
        self.env['ROS_DOMAIN_ID'] = str(domain_id)
        self.env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        self.processes: List[RosMemoryProcess] = []

    def start(
        self,
        *,
        ros_args: Sequence[str] = (),
        alloc_mb: int = 0,
        grow_mb: int = 0,
        nodes: Iterable[str] = (),
        executable_name: Optional[str] = None,
        wait: bool = True,
    ) -> RosMemoryProcess:
        """Start one process; executable_name makes argv show that program name."""
        script = NODE_SCRIPT
        if executable_name:
            script = self.tmp_dir / executable_name
            if not script.exists():
                script.symlink_to(NODE_SCRIPT)
        args = [sys.executable, str(script), '--alloc-mb', str(alloc_mb),
                '--grow-mb', str(grow_mb)]
        node_list = ','.join(nodes)
        if node_list:
            args += ['--nodes', node_list]
        if ros_args:
            args += ['--ros-args', *ros_args]
        label = ' '.join([executable_name or 'ros_memory_node', *ros_args])
        log_path = self.tmp_dir / f'node-{len(self.processes)}.log'
        with open(log_path, 'w') as log:
            popen = subprocess.Popen(
                args, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True, preexec_fn=_default_sigint)
        process = RosMemoryProcess(popen, label, log_path)
        self.processes.append(process)
        if wait:
            process.wait_for('ready', START_TIMEOUT_S)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


class OnlyPids:
    """
    The real scanner, narrowed to the pids a test started.

    The machine is shared with other test runs that start their own ROS nodes; totals over the
    whole table would move with them. The scan itself is the product's, unchanged.
    """

    def __init__(self, scanner, pids: Callable[[], Iterable[int]]) -> None:
        self.scanner = scanner
        self._pids = pids

    def scan(self) -> RosProcessScan:
        scan = self.scanner.scan()
        keep = set(self._pids())
        return RosProcessScan(
            processes=tuple(p for p in scan.processes if p.pid in keep), scan_s=scan.scan_s)


def by_pid(scan: RosProcessScan) -> Dict[int, object]:
    return {process.pid: process for process in scan.processes}
