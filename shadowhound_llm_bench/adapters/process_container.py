"""A local process as the container: the simulator or `ollama serve` started by the node itself."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Dict, List, Mapping, Optional, Sequence

import httpx
import psutil

from ..core.memory.memory_reading import ContainerSample, ContainerState
from .container_backend import ContainerError, wait_for_ollama
from ..common.process_group import start_process_group, stop_process_group


def process_tree_memory(root_pid: int) -> ContainerSample:
    """PSS (RSS where PSS is unreadable) summed over a process and its descendants."""
    stamp = time.time()
    try:
        root = psutil.Process(root_pid)
        processes: List[psutil.Process] = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return ContainerSample(stamp, 0, 0, 0, ContainerState.STOPPED)
    working_set = 0
    usage = 0
    anon = 0
    for process in processes:
        try:
            try:
                full = process.memory_full_info()
                rss, pss = full.rss, getattr(full, "pss", full.rss)
            except psutil.AccessDenied:
                full = process.memory_info()
                rss = pss = full.rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue  # vanished or unreadable: skipped, never fatal
        working_set += pss
        usage += rss
        # Resident pages not backed by a file or shared memory: the tree's anonymous memory.
        anon += max(0, rss - getattr(full, "shared", 0))
    return ContainerSample(stamp, working_set, usage, 0, anon_bytes=anon,
                           file_bytes=max(0, usage - anon))


class ProcessContainer:
    """
    Runs `argv` in its own session; restart = stop the whole group and start it again.

    The memory limit cannot be enforced on a plain process: set_memory_limit records it so samples
    report it and the budget is capped by it. With refuse_when_answering, start() refuses when
    something already answers at the Ollama URL (an `ollama.service`, say): two servers on one
    port would measure the wrong one.
    """

    measures_memory = True
    unmeasured = ""

    def __init__(self, *, name: str, argv: Sequence[str], ollama_base_url: str,
                 env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                 stop_timeout_s: float = 5.0, log_path: Optional[str] = None,
                 refuse_when_answering: bool = False) -> None:
        if not argv:
            raise ValueError("argv must name the program to run")
        self.name = name
        self.argv = list(argv)
        self.ollama_base_url = ollama_base_url
        self.env: Dict[str, str] = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.stop_timeout_s = stop_timeout_s
        self.log_path = log_path
        self._process: Optional[subprocess.Popen] = None
        self._limit_bytes = 0
        self._restarting = False
        self._closed = False
        self._lock = threading.Lock()
        self.selection_reason = ""
        self.refuse_when_answering = refuse_when_answering

    def describe(self) -> str:
        """Command and PID, for the log and /diagnostics."""
        return f"local process {' '.join(self.argv)} (pid {self.pid or 'not running'})"

    def _someone_else_serves(self) -> bool:
        try:
            httpx.get(f"{self.ollama_base_url.rstrip('/')}/api/version", timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    @property
    def pid(self) -> Optional[int]:
        """PID of the running process, None when stopped."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def process_ids(self) -> Optional[List[int]]:
        """List the Ollama process and its descendants; None when it is not running."""
        pid = self.pid
        try:
            return [pid] + [p.pid for p in psutil.Process(pid).children(recursive=True)] \
                if pid is not None else None
        except psutil.NoSuchProcess:
            return None

    def start(self, *, deadline_s: float) -> float:
        """Start the process and wait until Ollama answers; seconds it took."""
        started = time.monotonic()
        with self._lock:
            if self._closed:
                # A restart still under way when its owner closed the backend (a cancel during
                # the restart wait) must not leave a server behind.
                raise ContainerError(f"{self.name} was closed; not started again")
            if self.pid is not None:
                raise ContainerError(f"{self.name} is already running (pid {self.pid})")
            if self.refuse_when_answering and self._someone_else_serves():
                raise ContainerError(
                    f"another Ollama already answers at {self.ollama_base_url} (a systemd "
                    "ollama.service?): use container.backend auto or systemd to manage it, or "
                    "give this one another port")
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            try:
                self._process = start_process_group(
                    self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=log)
            except OSError as exc:
                raise ContainerError(f"cannot start {self.name}: {exc}") from exc
            finally:
                if log is not subprocess.DEVNULL:
                    log.close()
        return wait_for_ollama(self.ollama_base_url, deadline_s=deadline_s, started=started)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after stop_timeout_s."""
        with self._lock:
            process = self._process
            self._process = None
        stop_process_group(process, grace_s=self.stop_timeout_s)

    def sample(self) -> ContainerSample:
        """Memory of the process tree now."""
        pid = self.pid
        if pid is None:
            state = ContainerState.RESTARTING if self._restarting else ContainerState.STOPPED
            return ContainerSample(time.time(), 0, 0, self._limit_bytes, state)
        sample = process_tree_memory(pid)
        return ContainerSample(sample.stamp_s, sample.working_set_bytes, sample.usage_bytes,
                               self._limit_bytes, sample.state, anon_bytes=sample.anon_bytes,
                               file_bytes=sample.file_bytes)

    def restart(self, *, deadline_s: float) -> float:
        """Stop the group, start it again, wait for Ollama; seconds it took."""
        started = time.monotonic()
        self._restarting = True
        try:
            self.stop()
            remaining = deadline_s - (time.monotonic() - started)
            self.start(deadline_s=max(0.1, remaining))
            return time.monotonic() - started
        finally:
            self._restarting = False

    def state(self) -> ContainerState:
        """Report running, restarting or stopped."""
        if self._restarting:
            return ContainerState.RESTARTING
        return ContainerState.RUNNING if self.pid is not None else ContainerState.STOPPED

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Record the limit (reported in samples; a plain process cannot be capped)."""
        if limit_bytes <= 0:
            raise ValueError(f"memory limit must be positive, got {limit_bytes}")
        self._limit_bytes = int(limit_bytes)

    def close(self) -> None:
        """Stop the process this backend started; it is never started again."""
        with self._lock:
            self._closed = True
        self.stop()
