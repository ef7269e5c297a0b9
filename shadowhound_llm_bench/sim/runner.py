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

# Runs as `python -I -S -c RUNNER_SOURCE size load_s die_at crash_fraction name cgroup_dir`.
# Imports nothing beyond builtins-level modules so the process adds only a few MB of its own.
# Its own private memory is subtracted from the mapping so the whole process weighs `size`.
# It writes "R" when every page is touched, then holds the memory until stdin closes.
# Out-of-memory death: die_at >= 0 (emulated limit) or, with a cgroup_dir, when the cgroup's
# working set plus the next chunk would pass its limit, the runner SIGKILLs itself just before
# the kernel would have to choose a victim. (Without CAP_SYS_RESOURCE nobody can lower a
# runner's oom_score_adj, so the kernel could otherwise kill an older, bigger runner instead.)
RUNNER_SOURCE = r'''
import mmap, os, sys, time
size = int(sys.argv[1]); load_s = float(sys.argv[2]); die_at = int(sys.argv[3])
crash_at = float(sys.argv[4]); name = sys.argv[5]; cg = sys.argv[6]
for path, text in (('/proc/self/comm', name[:15]), ('/proc/self/oom_score_adj', '1000')):
    try:
        with open(path, 'w') as f:
            f.write(text)
    except OSError:
        pass
def num(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text != 'max' else -1
    except (OSError, ValueError):
        return -1
def inactive_file():
    try:
        with open(cg + '/memory.stat') as f:
            for line in f:
                key, value = line.split()
                if key in ('total_inactive_file', 'inactive_file'):
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0
v2 = bool(cg) and os.path.exists(cg + '/memory.current')
limit = num(cg + ('/memory.max' if v2 else '/memory.limit_in_bytes')) if cg else -1
if limit >= 1 << 60:
    limit = -1
own = 0
with open('/proc/self/status') as f:
    for line in f:
        if line.startswith('RssAnon:'):
            own = int(line.split()[1]) * 1024
page = mmap.PAGESIZE
n = max(page, (size - own) // page * page)
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
chunk = 1 << 22
start = time.monotonic()
done = 0
while done < n:
    if die_at >= 0 and own + done >= die_at:
        os.kill(os.getpid(), 9)
    if limit > 0:
        used = num(cg + ('/memory.current' if v2 else '/memory.usage_in_bytes'))
        if used - inactive_file() + chunk + (1 << 21) > limit:
            os.kill(os.getpid(), 9)
    if crash_at >= 0 and done >= crash_at * n:
        os._exit(2)
    end = min(n, done + chunk)
    for off in range(done, end, page):
        m[off] = 1
    done = end
    wait = start + load_s * done / n - time.monotonic()
    if wait > 0:
        time.sleep(wait)
if crash_at >= 1:
    os._exit(2)
sys.stdout.write('R\n')
sys.stdout.flush()
sys.stdin.buffer.read(1)
'''

RUNNER_NAME = 'ollama-runner'


class RunnerError(RuntimeError):
    """A runner that could not be started or controlled."""


@dataclass(frozen=True)
class RunnerExit:
    """How a runner ended during its load."""

    returncode: Optional[int]
    killed_by_signal: Optional[int]

    @property
    def oom_like(self) -> bool:
        """Killed by SIGKILL that the server did not send: the kernel's (or emulated) OOM kill."""
        return self.killed_by_signal == signal.SIGKILL


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
    """Set oom_score_adj; False when not permitted (lowering needs CAP_SYS_RESOURCE)."""
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
                 cgroup_dir: str = '', name: str = RUNNER_NAME,
                 python: str = sys.executable) -> None:
        self.model = model
        self.resident_bytes = resident_bytes
        self.started_at = time.monotonic()
        argv: List[str] = [python, '-I', '-S', '-c', RUNNER_SOURCE, str(int(resident_bytes)),
                           f'{max(0.0, load_wall_s):.6f}', str(int(die_at_bytes)),
                           f'{crash_at_fraction:.6f}', name, cgroup_dir]
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True)
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
