"""
The simulated machine around the Ollama container: a memory cgroup of the machine's size.

Layout (cgroup v1, as root): /sys/fs/cgroup/memory/<name>/ with memory.limit_in_bytes = the
scenario's host memory (scaled). Children: `driver` (the machine host process: GPU driver,
meminfo, drop_caches, see machine_host.py), `ros` (the scenario's ROS 2 / Nav2 load), `ollama`
(a local simulator) or the Docker container itself (`cgroup_parent=/<name>`). A kernel OOM in the
machine cgroup therefore chooses its victim by oom_score among all of them.

The folder `machine_dir` (reported as `.machine_dir` by the simulators) holds what the product
reads and writes: `meminfo`, `drop_caches`, `nvidia-smi`, `state.json`, `gpu.sock`.
Without the privilege to create cgroups the accounting is emulated (logged once, and
`state.json` says `"accounting": "emulated"`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..common.kernel_text import parse_meminfo
from . import machine_host
from .scenario import REPO_ROOT, Scenario

LOG = logging.getLogger(__name__)
MEMORY_CGROUP_ROOT = '/sys/fs/cgroup/memory'
# On disk (not tmpfs), one folder per machine: a blob's cached pages are charged to the cgroup
# that first read them, so machines never share blob files.
BLOBS_ROOT = '/var/tmp/shadowhound-sim-blobs'
# The operating system's own memory (machine.system_reserve): shared-memory pages in the
# machine's `system` cgroup, unreclaimable without swap and held by no process the OOM killer
# could end, as the kernel's and the system services' memory on the robot.
SYSTEM_RESERVE_ROOT = '/dev/shm'
UNIFIED = 'unified'
CGROUP_CHARGED = 'cgroup_charged'
MEMORY_MODELS = (UNIFIED, CGROUP_CHARGED)


class MachineError(RuntimeError):
    """The simulated machine could not be set up."""


def _write(path: str, text: str) -> None:
    with open(path, 'w', encoding='ascii') as handle:
        handle.write(text)


def can_create_cgroups() -> bool:
    """Return True when a memory cgroup v1 can be created here (root, v1 hierarchy)."""
    return os.geteuid() == 0 and os.access(MEMORY_CGROUP_ROOT, os.W_OK) \
        and os.path.exists(os.path.join(MEMORY_CGROUP_ROOT, 'memory.limit_in_bytes'))


@dataclass
class SimMachine:
    """A started machine: its cgroup (or emulated accounting) and its host process."""

    name: str
    memory_model: str
    machine_dir: str
    cgroup_dir: str  # '' when emulated
    total_bytes: int
    blobs_dir: str
    process: subprocess.Popen

    @property
    def meminfo_path(self) -> str:
        """Return the path of the machine's /proc/meminfo (this machine's bytes)."""
        return os.path.join(self.machine_dir, machine_host.MEMINFO_NAME)

    @property
    def drop_caches_path(self) -> str:
        """Write `3` here to drop caches (releases the driver pool and the blobs' cache)."""
        return os.path.join(self.machine_dir, machine_host.DROP_CACHES_NAME)

    @property
    def nvidia_smi_path(self) -> str:
        """Return the path of the nvidia-smi stand-in (executable)."""
        return os.path.join(self.machine_dir, machine_host.NVIDIA_SMI_NAME)

    @property
    def gpu_socket_path(self) -> str:
        """Return the GPU driver's unix socket (bind-mounted into the container)."""
        return os.path.join(self.machine_dir, machine_host.SOCKET_NAME)

    @property
    def cgroup_parent(self) -> str:
        """Docker's cgroup_parent for the Ollama container ('' when emulated)."""
        return '/' + self.name if self.cgroup_dir else ''

    @property
    def unified(self) -> bool:
        """Return True for a unified-memory machine (device memory held by the driver)."""
        return self.memory_model == UNIFIED

    def sub_cgroup(self, sub: str, limit_bytes: int = 0) -> str:
        """Return (creating) the cgroup folder <machine>/<sub> ('' when emulated)."""
        if not self.cgroup_dir:
            return ''
        path = os.path.join(self.cgroup_dir, sub)
        os.makedirs(path, exist_ok=True)
        if limit_bytes > 0:
            _write(os.path.join(path, 'memory.limit_in_bytes'), str(int(limit_bytes)))
        return path

    def join(self, pid: int, sub: str) -> None:
        """Move a process into <machine>/<sub>; emulated: count its RSS as the machine's."""
        path = self.sub_cgroup(sub)
        if path:
            _write(os.path.join(path, 'cgroup.procs'), str(pid))
        else:
            self._ask({'op': 'join', 'pid': pid})

    def _ask(self, request: Dict[str, Any]) -> Any:
        import socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10.0)
            sock.connect(self.gpu_socket_path)
            sock.sendall(json.dumps(request).encode() + b'\n')
            data = b''
            while not data.endswith(b'\n'):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data or b'null')

    def state(self) -> Dict[str, Any]:
        """Return what the host process published last: pool, device bytes, drops."""
        with open(os.path.join(self.machine_dir, machine_host.STATE_NAME),
                  encoding='utf-8') as handle:
            return json.load(handle)

    def meminfo_bytes(self) -> Dict[str, int]:
        """Return the machine's meminfo fields in bytes."""
        with open(self.meminfo_path, encoding='ascii') as handle:
            return parse_meminfo(handle.read())

    def drop_caches(self, timeout_s: float = 10.0, level: int = 3) -> None:
        """Drop caches (write level, 3 by default) and wait until it was done."""
        before = self.state()['drop_caches_count']
        _write(self.drop_caches_path, f'{level}\n')
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.state()['drop_caches_count'] > before:
                return
            time.sleep(0.02)
        raise MachineError(f'drop_caches not done within {timeout_s:.0f} s')

    def alive(self) -> bool:
        """Return True while the host process runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the host process, end what is left in the machine cgroup, remove it all."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout:
            self.process.stdout.close()
        remove_machine(machine_dir=self.machine_dir, cgroup_dir=self.cgroup_dir,
                       blobs_dir=self.blobs_dir)

    def __enter__(self) -> 'SimMachine':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def remove_machine(*, machine_dir: str, cgroup_dir: str, blobs_dir: str) -> None:
    """
    Remove a machine by its folders (also one whose starting process is gone).

    Its host process (pid in `host.pid`) is asked to stop first; whatever is left in the
    machine cgroup is killed (only simulator processes live there), then the folders go.
    """
    for folder in (cgroup_dir, blobs_dir):
        if folder:
            try:
                os.unlink(system_reserve_path(os.path.basename(folder)))
            except OSError:
                pass
    pid_path = os.path.join(machine_dir, machine_host.PID_NAME) if machine_dir else ''
    try:
        with open(pid_path, encoding='ascii') as handle:
            host_pid = int(handle.read().strip())
    except (OSError, ValueError):
        host_pid = 0
    if host_pid > 0 and _is_machine_host(host_pid, machine_dir):
        try:
            os.kill(host_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and _is_machine_host(host_pid, machine_dir):
            time.sleep(0.05)
    if cgroup_dir:
        _remove_cgroup(cgroup_dir)
    for folder in (machine_dir, blobs_dir):
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def _is_machine_host(pid: int, machine_dir: str) -> bool:
    """Return True while pid is the host process of that machine (not a reused pid)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            argv = handle.read().split(b'\0')
    except OSError:
        return False
    return b'shadowhound_llm_bench.sim.machine_host' in argv and machine_dir.encode() in argv


def _remove_cgroup(path: str) -> None:
    """Remove a cgroup tree; processes still in it are killed first (they are ours)."""
    for root, dirs, _ in os.walk(path, topdown=False):
        for folder in [os.path.join(root, d) for d in dirs] + ([path] if root == path else []):
            for _ in range(50):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    for pid in _tasks(folder):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.05)


def _tasks(folder: str) -> list:
    try:
        with open(os.path.join(folder, 'cgroup.procs'), encoding='ascii') as handle:
            return [int(line) for line in handle if line.strip()]
    except (OSError, ValueError):
        return []


def system_reserve_path(name: str) -> str:
    """Return the file holding the machine's system memory."""
    return os.path.join(SYSTEM_RESERVE_ROOT, f'{name}-system-reserve')


def hold_system_reserve(machine: SimMachine, n_bytes: int) -> None:
    """Charge n_bytes of unreclaimable pages to <machine>/system (the OS's own memory)."""
    if n_bytes <= 0 or not machine.cgroup_dir:
        if n_bytes > 0:
            LOG.warning('simulated machine %s: system_reserve is not held (emulated '
                        'accounting); the product still subtracts it', machine.name)
        return
    procs = os.path.join(machine.sub_cgroup('system'), 'cgroup.procs')
    code = ('import sys\n'
            'with open(sys.argv[1], "wb") as f:\n'
            '    for _ in range(int(sys.argv[2]) >> 20):\n'
            '        f.write(b"\\1" * (1 << 20))\n')
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, '-I', '-S', '-c', code, system_reserve_path(machine.name),
         str(int(n_bytes))], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        preexec_fn=lambda: _write(procs, str(os.getpid())))
    if done.returncode != 0:
        raise MachineError(f'cannot hold the system reserve: {done.stderr[-300:]!r}')


def start_machine(scenario: Scenario, *, name: str = '', blobs_root: str = BLOBS_ROOT,
                  use_cgroups: Optional[bool] = None, ready_timeout_s: float = 20.0
                  ) -> SimMachine:
    """Create the machine cgroup of the scenario's size and start its host process."""
    name = name or f'shb-machine-{uuid.uuid4().hex[:10]}'
    total = scenario.physical_bytes(scenario.host_total_bytes)
    if total <= 0:
        raise MachineError(f'scenario {scenario.name}: machine.host_total must be > 0')
    cgroups = can_create_cgroups() if use_cgroups is None else use_cgroups
    cgroup_dir = ''
    if cgroups:
        cgroup_dir = os.path.join(MEMORY_CGROUP_ROOT, name)
        try:
            os.mkdir(cgroup_dir)
            _write(os.path.join(cgroup_dir, 'memory.limit_in_bytes'), str(total))
            _write(os.path.join(cgroup_dir, 'memory.swappiness'), '0')
            os.mkdir(os.path.join(cgroup_dir, 'driver'))
        except OSError as exc:
            _remove_cgroup(cgroup_dir)
            raise MachineError(f'cannot create memory cgroup {cgroup_dir}: {exc}') from exc
    else:
        LOG.warning('simulated machine %s: no memory cgroup can be created here (needs root '
                    'and cgroup v1); memory accounting is EMULATED from process RSS', name)
    blobs_dir = os.path.join(blobs_root, name)
    os.makedirs(blobs_dir, exist_ok=True)
    machine_dir = tempfile.mkdtemp(prefix=f'{name}-')
    os.chmod(machine_dir, 0o755)
    driver_procs = os.path.join(cgroup_dir, 'driver', 'cgroup.procs') if cgroup_dir else ''
    argv = [sys.executable, '-m', 'shadowhound_llm_bench.sim.machine_host', '--dir', machine_dir,
            '--total-bytes', str(total), '--blobs-dir', blobs_dir]
    if cgroup_dir:
        argv += ['--cgroup', cgroup_dir]
    if scenario.memory_model == UNIFIED:
        argv.append('--unified')
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')

    def enter_driver_cgroup() -> None:
        if driver_procs:
            _write(driver_procs, str(os.getpid()))
        os.setsid()

    process = subprocess.Popen(  # noqa: S603 - fixed argv
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO_ROOT,
        preexec_fn=enter_driver_cgroup)
    machine = SimMachine(name=name, memory_model=scenario.memory_model, machine_dir=machine_dir,
                         cgroup_dir=cgroup_dir, total_bytes=total, blobs_dir=blobs_dir,
                         process=process)
    import select
    ready, _, _ = select.select([process.stdout], [], [], ready_timeout_s)
    line = process.stdout.readline() if ready and process.stdout else b''
    if not line.startswith(b'machine ready'):
        machine.stop()
        raise MachineError(f'machine host did not start within {ready_timeout_s:.0f} s')
    reserve = scenario.physical_bytes(scenario.system_reserve_bytes)
    try:
        hold_system_reserve(machine, reserve)
        # Its meminfo is published every 50 ms: the first reading a user takes shows the reserve.
        _wait_published_shmem(machine, reserve if machine.cgroup_dir else 0)
    except (OSError, subprocess.SubprocessError, MachineError):
        machine.stop()
        raise
    return machine


def _wait_published_shmem(machine: SimMachine, n_bytes: int, timeout_s: float = 5.0) -> None:
    """Wait until the machine's published meminfo counts n_bytes of Shmem."""
    end = time.monotonic() + timeout_s
    while machine.meminfo_bytes().get('Shmem', 0) < n_bytes:
        if time.monotonic() > end:
            raise MachineError(f'the system reserve did not show in meminfo within {timeout_s} s')
        time.sleep(0.01)
