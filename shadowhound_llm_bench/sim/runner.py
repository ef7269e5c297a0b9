"""The runner subprocess of one loaded model: a bare interpreter that holds the model's memory."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Optional

# Runs as `python -I -S -c RUNNER_SOURCE anon load_s die_at crash_fraction name blob blob_bytes
# device_bytes gpu_socket oom_score_adj` ('' leaves oom_score_adj as inherited). Imports
# nothing beyond builtins-level modules, so the process adds only a few MB of its own; its own
# private memory is subtracted from `anon`.
# Loading, paced over load_s: the model blob is read through the page cache with pread(2) (the
# pages stay cached after the runner exits, charged to this cgroup as Linux charges file pages),
# then `anon` bytes are touched: on a machine whose model memory is charged to the container,
# the weights copied into the runner's buffers plus KV cache and graph (Ollama's engine loads
# tensors into allocated backend buffers); on the unified machine only the runner's CPU-side
# share, while `device_bytes` are asked of the GPU driver over its unix socket: held by the
# driver, outside this process's cgroup. When the driver drops the connection (its context was
# killed by the kernel's OOM killer) the runner exits 3, as a runner dies when its CUDA context
# is lost.
# It writes "R" when loaded, then holds everything until stdin closes. Out-of-memory death is the
# kernel's (the cgroup limit), except with die_at >= 0 (emulated: no memory cgroup could be
# created), where the runner SIGKILLs itself when its bytes reach die_at. A
# loading runner sets its oom_score_adj to 1000 (the kernel's preferred victim, so an OOM during
# a load fails that load); the server lowers it to 0 once loaded (lowering to values >= 0 needs
# no privilege; below 0 needs CAP_SYS_RESOURCE).
RUNNER_SOURCE = r'''
import json, mmap, os, select, socket, sys, time
anon = int(sys.argv[1]); load_s = float(sys.argv[2]); die_at = int(sys.argv[3])
crash_at = float(sys.argv[4]); name = sys.argv[5]; blob = sys.argv[6]
blob_bytes = int(sys.argv[7]); device = int(sys.argv[8]); gpu = sys.argv[9]; adj = sys.argv[10]
for path, text in (('/proc/self/comm', name[:15]), ('/proc/self/oom_score_adj', adj)):
    if not text:
        continue
    try:
        with open(path, 'w') as f:
            f.write(text)
    except OSError:
        pass
own = 0
with open('/proc/self/status') as f:
    for line in f:
        if line.startswith('RssAnon:'):
            own = int(line.split()[1]) * 1024
page = mmap.PAGESIZE
n = max(page, (anon - own) // page * page)
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
chunk = 1 << 22
fd = os.open(blob, os.O_RDONLY) if blob else -1
work = blob_bytes + n
start = time.monotonic()
done_blob = 0
done_anon = 0
while done_blob < blob_bytes or done_anon < n:
    done = done_blob + done_anon
    if die_at >= 0 and own + done_anon >= die_at:
        os.kill(os.getpid(), 9)
    if crash_at >= 0 and done >= crash_at * work:
        os._exit(2)
    if done_blob < blob_bytes:
        end = min(blob_bytes, done_blob + chunk)
        os.pread(fd, end - done_blob, done_blob)
        done_blob = end
    else:
        end = min(n, done_anon + chunk)
        for off in range(done_anon, end, page):
            m[off] = 1
        done_anon = end
    wait = start + load_s * (done_blob + done_anon) / max(1, work) - time.monotonic()
    if wait > 0:
        time.sleep(wait)
conn = None
if device > 0 and gpu and blob:
    try:  # tell the driver what was read (counted only where the accounting is emulated)
        note = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        note.connect(gpu)
        note.sendall(json.dumps({'op': 'read', 'path': blob, 'bytes': blob_bytes}).encode()
                     + b'\n')
        note.recv(64)
        note.close()
    except OSError:
        pass
if device > 0 and gpu:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(gpu)
        with open('/proc/self/oom_score_adj') as f:
            adj = int(f.read().strip() or 0)
        conn.sendall(json.dumps({'op': 'alloc', 'bytes': device, 'name': name,
                                 'oom_score_adj': adj, 'loaded_oom_score_adj': 0}).encode()
                     + b'\n')
        reply = b''
        while not reply.endswith(b'\n'):
            part = conn.recv(4096)
            if not part:
                break
            reply += part
        if not json.loads(reply or b'{}').get('ok'):
            os._exit(3)
    except (OSError, ValueError):
        os._exit(3)
if crash_at >= 1:
    os._exit(2)
sys.stdout.write('R\n')
sys.stdout.flush()
watch = [sys.stdin] + ([conn] if conn is not None else [])
while True:
    ready, _, _ = select.select(watch, [], [])
    if sys.stdin in ready:
        break
    if conn is not None and conn in ready and not conn.recv(64):
        os._exit(3)
'''

RUNNER_NAME = 'ollama-runner'
CONTEXT_LOST_EXIT = 3


class RunnerError(RuntimeError):
    """A runner that could not be started or controlled."""


@dataclass(frozen=True)
class RunnerExit:
    """How a runner ended during its load."""

    returncode: Optional[int]
    killed_by_signal: Optional[int]

    @property
    def oom_like(self) -> bool:
        """Killed by SIGKILL the server did not send (OOM kill), or its GPU context was lost."""
        return self.killed_by_signal == signal.SIGKILL or self.returncode == CONTEXT_LOST_EXIT


def read_proc_status_bytes(pid: int, field: str) -> int:
    """Return a kB field of /proc/<pid>/status in bytes (0 when the process is gone)."""
    try:
        with open(f'/proc/{pid}/status', encoding='ascii') as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def set_oom_score_adj(pid: int, value: int) -> bool:
    """Set oom_score_adj; False when not permitted (below 0 needs CAP_SYS_RESOURCE)."""
    try:
        with open(f'/proc/{pid}/oom_score_adj', 'w', encoding='ascii') as handle:
            handle.write(str(value))
        return True
    except OSError:
        return False


class RunnerProcess:
    """A started runner: wait for its load, read its memory, stop it."""

    def __init__(self, *, model: str, resident_bytes: int, load_wall_s: float,
                 die_at_bytes: int = -1, crash_at_fraction: float = -1.0,
                 name: str = RUNNER_NAME, blob_path: str = '', blob_bytes: int = 0,
                 device_bytes: int = 0, gpu_socket: str = '',
                 cgroup_procs: str = '', oom_score_adj: Optional[int] = 1000,
                 python: str = sys.executable) -> None:
        self.model = model
        self.resident_bytes = resident_bytes
        self.device_bytes = device_bytes
        self.started_at = time.monotonic()
        argv: List[str] = [python, '-I', '-S', '-c', RUNNER_SOURCE, str(int(resident_bytes)),
                           f'{max(0.0, load_wall_s):.6f}', str(int(die_at_bytes)),
                           f'{crash_at_fraction:.6f}', name, blob_path, str(int(blob_bytes)),
                           str(int(device_bytes)), gpu_socket,
                           '' if oom_score_adj is None else str(int(oom_score_adj))]

        def join_cgroup() -> None:  # before exec: every page is charged there
            if cgroup_procs:
                with open(cgroup_procs, 'w', encoding='ascii') as handle:
                    handle.write(str(os.getpid()))
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True,
                preexec_fn=join_cgroup if cgroup_procs else None)
        except OSError as exc:
            raise RunnerError(f'cannot start runner for {model}: {exc}') from exc
        self.exit: Optional[RunnerExit] = None

    @property
    def pid(self) -> int:
        """Process id of the runner."""
        return self._proc.pid

    def wait_ready(self, timeout_s: float) -> Optional[RunnerExit]:
        """Block until loaded (None) or dead (how it ended); kill it when timeout_s passes."""
        stdout = self._proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], max(0.0, timeout_s))
        if ready:
            line = stdout.readline()
            if line.startswith(b'R'):
                return None
        else:
            self._proc.kill()
        code = self._proc.wait(timeout=10)
        self.exit = RunnerExit(returncode=code, killed_by_signal=-code if code < 0 else None)
        return self.exit

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self._proc.poll() is None

    def anon_bytes(self) -> int:
        """Private resident memory of the runner now."""
        return read_proc_status_bytes(self.pid, 'RssAnon')

    def rss_bytes(self) -> int:
        """Resident memory of the runner now (its anonymous and mapped file pages)."""
        return read_proc_status_bytes(self.pid, 'VmRSS')

    def stop(self, timeout_s: float = 5.0) -> None:
        """Let the runner exit (stdin closes), killing it when it does not go in time."""
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=timeout_s)
        if self._proc.stdout:
            self._proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL the runner now (server shutdown)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
