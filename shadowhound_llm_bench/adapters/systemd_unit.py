"""Ollama as a systemd service (the Linux installer's ollama.service): cgroup memory, restart."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from typing import Dict, List, Optional, Sequence

from ..core.memory.memory_reading import ContainerSample, ContainerState
from .cgroup_memory import CgroupMemoryFiles, memory_cgroup_dir
from .container_backend import (
    ContainerControlUnavailable, ContainerError, ContainerNotFound, wait_for_ollama)

_ACTIVE_STATES = {
    "active": ContainerState.RUNNING,
    "reloading": ContainerState.RUNNING,
    "activating": ContainerState.RESTARTING,
    "deactivating": ContainerState.RESTARTING,
    "inactive": ContainerState.STOPPED,
    "failed": ContainerState.STOPPED,
}

# What systemctl says when the caller may not manage the unit (polkit / D-Bus refusal);
# exit code 4 is the LSB "user had insufficient privilege".
_DENIED_WORDS = ("access denied", "interactive authentication required", "permission denied",
                 "not authorized", "authentication is required")


def _one_line(text: str) -> str:
    """Join systemctl's message lines (they go into one log line and one report line)."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def unit_name(name: str) -> str:
    """`ollama` -> `ollama.service`; names with a unit suffix stay as they are."""
    return name if "." in name else f"{name}.service"


class SystemdUnit:
    """
    Ollama run by systemd: memory from the unit's cgroup, restart through `systemctl`.

    `systemctl` (any systemctl-compatible command, e.g. ['sudo', '-n', 'systemctl']) talks to
    systemd over D-Bus; each call has the deadline command_timeout_s. The unit's cgroup path
    (ControlGroup) is asked for once and stays the same across restarts; while the unit is
    inactive it has none, and sample() asks again at most every resolve_period_s. Restart
    without permission raises ContainerControlUnavailable naming the fix, so the guard records
    that a restart was not possible and the policy goes on to its next option.
    """

    measures_memory = True
    unmeasured = ""

    def __init__(self, *, name: str, ollama_base_url: str,
                 systemctl: Sequence[str] = ("systemctl",), command_timeout_s: float = 10.0,
                 resolve_period_s: float = 1.0, cgroup_root: str = "/sys/fs/cgroup") -> None:
        if not systemctl:
            raise ValueError("systemctl must name a command")
        self.name = name
        self.unit = unit_name(name)
        self.ollama_base_url = ollama_base_url
        self.systemctl = list(systemctl)
        self.command_timeout_s = command_timeout_s
        self.resolve_period_s = resolve_period_s
        self.cgroup_root = cgroup_root
        self.selection_reason = ""
        self._lock = threading.Lock()
        self._cgroup: Optional[CgroupMemoryFiles] = None
        self._cgroup_path = ""
        self._last_resolve_s = float("-inf")
        self._known_limit_bytes = 0
        self._restarting = False
        properties = self._show()
        if properties.get("LoadState") in ("not-found", "masked", ""):
            raise ContainerNotFound(
                f"no systemd unit {self.unit} (LoadState={properties.get('LoadState') or '?'})")
        self._adopt(properties)

    # ------------------------------------------------------------------ systemctl
    def _run(self, *args: str, timeout_s: Optional[float] = None) -> subprocess.CompletedProcess:
        argv = [*self.systemctl, *args]
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=timeout_s or self.command_timeout_s, check=False)
        except FileNotFoundError as exc:
            raise ContainerControlUnavailable(
                f"{self.systemctl[0]} not found: systemd cannot be asked about {self.unit}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(
                f"`{' '.join(argv)}` did not finish within {exc.timeout:.0f} s") from exc

    def _show(self) -> Dict[str, str]:
        result = self._run("show", self.unit, "-p", "LoadState", "-p", "ActiveState",
                           "-p", "ControlGroup")
        if result.returncode != 0:
            raise ContainerError(f"`systemctl show {self.unit}` failed "
                                 f"({result.returncode}): {_one_line(result.stderr)}")
        properties = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                properties[key.strip()] = value.strip()
        return properties

    def _adopt(self, properties: Dict[str, str]) -> None:
        path = properties.get("ControlGroup", "")
        directory = memory_cgroup_dir(path, self.cgroup_root) if path else None
        with self._lock:
            self._last_resolve_s = time.monotonic()
            if directory:
                self._cgroup_path = path
                self._cgroup = CgroupMemoryFiles(directory)

    def _check(self, result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode == 0:
            return
        message = _one_line(result.stderr or result.stdout)
        if result.returncode == 4 or any(w in message.lower() for w in _DENIED_WORDS):
            raise ContainerControlUnavailable(
                f"no permission to {what} {self.unit} through systemd ({message or 'exit 4'}): "
                f"run the node as root, allow `systemctl {what} {self.unit}` with a polkit rule "
                "or sudoers entry (container.systemctl: ['sudo', '-n', 'systemctl']), or use "
                "container.backend api_only")
        raise ContainerError(f"systemctl {what} {self.unit} failed "
                             f"({result.returncode}): {message}")

    # ------------------------------------------------------------------ backend
    @property
    def cgroup_directory(self) -> str:
        """Where the unit's memory is read from ("" while it has no cgroup)."""
        cgroup = self._cgroup
        return cgroup.directory if cgroup is not None else ""

    def process_ids(self) -> Optional[List[int]]:
        """List the unit's processes from its cgroup; None while it has no cgroup."""
        cgroup = self._cgroup
        return cgroup.pids() if cgroup is not None else None

    def oom_kills(self) -> Optional[int]:
        """Return the kernel's OOM kills in the unit's cgroup; None while it has none."""
        cgroup = self._cgroup
        return cgroup.oom_kills() if cgroup is not None else None

    def describe(self) -> str:
        """Name the unit and its memory path (log, /diagnostics)."""
        return (f"systemd unit {self.unit}, memory from "
                f"{self.cgroup_directory or 'its cgroup once it runs'}")

    def _not_running_sample(self) -> ContainerSample:
        state = ContainerState.RESTARTING if self._restarting else ContainerState.STOPPED
        return ContainerSample(time.time(), 0, 0, self._known_limit_bytes, state)

    def sample(self) -> ContainerSample:
        """Memory of the unit's cgroup now (a file read; a systemctl call while it has none)."""
        cgroup = self._cgroup
        if cgroup is None:
            if time.monotonic() - self._last_resolve_s < self.resolve_period_s:
                return self._not_running_sample()
            try:
                self._adopt(self._show())
            except ContainerError:
                return ContainerSample(time.time(), 0, 0, self._known_limit_bytes,
                                       ContainerState.UNKNOWN)
            cgroup = self._cgroup
            if cgroup is None:
                return self._not_running_sample()
        try:
            sample = cgroup.read()
        except (OSError, ValueError):
            return self._not_running_sample()  # inactive: systemd removed the cgroup
        if not cgroup.pids():
            return self._not_running_sample()  # a v1 cgroup can outlive its processes
        if sample.limit_bytes > 0:
            self._known_limit_bytes = sample.limit_bytes
            return sample
        return dataclasses.replace(sample, limit_bytes=self._known_limit_bytes)

    def state(self) -> ContainerState:
        """Report the unit's ActiveState; MISSING when systemd does not know it."""
        try:
            properties = self._show()
        except ContainerError:
            return ContainerState.UNKNOWN
        if properties.get("LoadState") in ("not-found", "masked"):
            return ContainerState.MISSING
        if self._cgroup is None:
            self._adopt(properties)
        return _ACTIVE_STATES.get(properties.get("ActiveState", ""), ContainerState.UNKNOWN)

    def restart(self, *, deadline_s: float) -> float:
        """`systemctl restart`, then poll /api/version until Ollama answers or the deadline."""
        started = time.monotonic()
        self._restarting = True
        try:
            self._check(self._run("restart", self.unit, timeout_s=max(1.0, deadline_s)),
                        "restart")
            if self._cgroup is None:
                self._adopt(self._show())
            return wait_for_ollama(self.ollama_base_url, deadline_s=deadline_s, started=started)
        finally:
            self._restarting = False

    def start(self, *, deadline_s: float) -> float:
        """`systemctl start` (the unit was inactive), then wait until Ollama answers."""
        started = time.monotonic()
        self._check(self._run("start", self.unit, timeout_s=max(1.0, deadline_s)), "start")
        self._adopt(self._show())
        return wait_for_ollama(self.ollama_base_url, deadline_s=deadline_s, started=started)

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Cap the unit's memory for this boot (`set-property --runtime MemoryMax=`)."""
        if limit_bytes <= 0:
            raise ValueError(f"memory limit must be positive, got {limit_bytes}")
        self._check(self._run("set-property", "--runtime", self.unit,
                              f"MemoryMax={int(limit_bytes)}"), "set-property")
        self._known_limit_bytes = int(limit_bytes)

    def close(self) -> None:
        """Nothing to release (the service keeps running)."""
