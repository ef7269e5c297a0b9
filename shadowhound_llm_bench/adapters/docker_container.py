"""The Ollama Docker container: working set from cgroup files or the stats API, restart, limit."""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
import time
from typing import Any, List, Mapping, Optional

import docker
import docker.errors
import requests.exceptions

from ..core.memory_reading import ContainerSample, ContainerState
from ..core.memory_sources import cgroup_memory
from .container_backend import ContainerError, ContainerNotFound, wait_for_ollama

# What an engine call can raise: the SDK's errors, and the transport's when the engine is gone
# (the SDK passes requests' connection errors and timeouts through unwrapped).
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)

# cgroup v1 reports "no limit" as a page-rounded huge number.
_NO_LIMIT_BYTES = 1 << 60

_STATES = {
    "running": ContainerState.RUNNING,
    "restarting": ContainerState.RESTARTING,
    "created": ContainerState.STOPPED,
    "exited": ContainerState.STOPPED,
    "paused": ContainerState.STOPPED,
    "dead": ContainerState.STOPPED,
    "removing": ContainerState.STOPPED,
}


def working_set_from_stats(memory_stats: Mapping[str, Any]) -> int:
    """Usage minus inactive file cache, as `docker stats` computes it (cgroup v1 and v2)."""
    usage = int(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    return usage - int(inactive) if inactive < usage else usage


def _read_int(path: str) -> int:
    with open(path, "r", encoding="ascii") as handle:
        text = handle.read().strip()
    return 0 if text == "max" else int(text)


def _read_stat(path: str) -> dict:
    stats = {}
    with open(path, "r", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                stats[key] = int(value)
    return stats


class CgroupMemoryFiles:
    """A container's memory cgroup read straight from /sys/fs/cgroup (v1 or v2)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.version = 1 if os.path.exists(os.path.join(directory, "memory.usage_in_bytes")) else 2

    @staticmethod
    def find(container_id: str, root: str = "/sys/fs/cgroup") -> Optional["CgroupMemoryFiles"]:
        """Find the cgroup directory of a container when this process can see it, else None."""
        candidates: List[str] = [
            os.path.join(root, "memory", "docker", container_id),  # v1, cgroupfs driver
            os.path.join(root, "memory", "system.slice", f"docker-{container_id}.scope"),
            os.path.join(root, "system.slice", f"docker-{container_id}.scope"),  # v2, systemd
            os.path.join(root, "docker", container_id),  # v2, cgroupfs driver
        ]
        # A container started with --cgroup-parent (for example under a machine-wide cgroup).
        candidates += sorted(glob.glob(os.path.join(root, "memory", "*", container_id)))
        candidates += sorted(glob.glob(os.path.join(root, "*", container_id)))
        for directory in candidates:
            usage_files = ("memory.usage_in_bytes", "memory.current")
            if any(os.access(os.path.join(directory, f), os.R_OK) for f in usage_files):
                return CgroupMemoryFiles(directory)
        return None

    def read(self) -> ContainerSample:
        """One sample; OSError when the cgroup is gone (container stopped or restarting)."""
        join = os.path.join
        stamp = time.time()
        if self.version == 1:
            usage = _read_int(join(self.directory, "memory.usage_in_bytes"))
            stat = _read_stat(join(self.directory, "memory.stat"))
            limit = _read_int(join(self.directory, "memory.limit_in_bytes"))
        else:
            usage = _read_int(join(self.directory, "memory.current"))
            stat = _read_stat(join(self.directory, "memory.stat"))
            limit = _read_int(join(self.directory, "memory.max"))
        if limit >= _NO_LIMIT_BYTES:
            limit = 0
        split = cgroup_memory(usage_bytes=usage, stat=stat, limit_bytes=limit,
                              version=self.version)
        return ContainerSample(stamp_s=stamp, working_set_bytes=split.working_set_bytes,
                               usage_bytes=usage, limit_bytes=limit, anon_bytes=split.anon_bytes,
                               file_bytes=split.file_bytes, cgroup_version=self.version,
                               mapped_file_bytes=split.mapped_file_bytes)


def _engine_address(client: Optional[docker.DockerClient] = None) -> str:
    """Where the engine is looked for, as the user can change it (DOCKER_HOST)."""
    env = os.environ.get("DOCKER_HOST")
    if client is not None:
        base_url = str(getattr(getattr(client, "api", None), "base_url", ""))
        if base_url and not base_url.startswith("http+docker://"):
            return base_url
        if not env:
            return "the given client's unix socket (DOCKER_HOST unset)"
    if env:
        return f"DOCKER_HOST={env}"
    return "unix:///var/run/docker.sock (DOCKER_HOST unset)"


def _engine_client(timeout_s: float) -> docker.DockerClient:
    """Connect to the engine from the environment; every engine call then has this deadline."""
    try:
        return docker.from_env(timeout=timeout_s)
    except _ENGINE_ERRORS as exc:
        raise ContainerError(f"Docker engine unreachable at {_engine_address()}: {exc}") from exc


class DockerContainer:
    """
    Ollama in a Docker container, found by name.

    sampling="auto" reads the cgroup files when they are visible from here and otherwise samples
    the Docker stats API (about a second per call) on a background thread, so sample() never
    waits for the engine. "cgroup" or "api" force one path. Every engine call made through the
    client built here has the deadline engine_timeout_s; ContainerError when the engine is
    unreachable (naming DOCKER_HOST), ContainerNotFound when no container has that name.
    """

    def __init__(self, *, name: str, ollama_base_url: str,
                 docker_client: Optional[docker.DockerClient] = None, sampling: str = "auto",
                 api_period_s: float = 1.0, stop_timeout_s: int = 10,
                 engine_timeout_s: float = 30.0,
                 cgroup_root: str = "/sys/fs/cgroup") -> None:
        if sampling not in ("auto", "cgroup", "api"):
            raise ValueError(f"sampling must be auto, cgroup or api, got {sampling!r}")
        self.name = name
        self.ollama_base_url = ollama_base_url
        self.stop_timeout_s = stop_timeout_s
        self.api_period_s = api_period_s
        self._client = docker_client or _engine_client(engine_timeout_s)
        self._own_client = docker_client is None
        try:
            self._container = self._get()
        except ContainerError:
            if self._own_client:
                self._client.close()
            raise
        self._lock = threading.Lock()
        self._restarting = False
        # The limit belongs to the container's configuration, not to its processes: readings
        # taken while it restarts (no cgroup yet, or one not limited yet) must not drop it.
        self._known_limit_bytes = int(
            (self._container.attrs.get("HostConfig") or {}).get("Memory") or 0)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._latest: Optional[ContainerSample] = None
        self._cgroup = (None if sampling == "api"
                        else CgroupMemoryFiles.find(self._container.id, cgroup_root))
        if sampling == "cgroup" and self._cgroup is None:
            raise ContainerError(
                f"the memory cgroup of container {name} is not visible under {cgroup_root}")
        if self._cgroup is None:
            self._latest = self.read_api_sample()
            self._thread = threading.Thread(target=self._api_loop, name=f"docker-stats-{name}",
                                            daemon=True)
            self._thread.start()

    @property
    def sampling(self) -> str:
        """Which path samples come from: cgroup or api."""
        return "cgroup" if self._cgroup is not None else "api"

    @property
    def container_id(self) -> str:
        """Full container id (the ROS process scan excludes its processes)."""
        return str(self._container.id)

    def _get(self) -> Any:
        try:
            container = self._client.containers.get(self.name)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no Docker container named {self.name!r}") from exc
        except _ENGINE_ERRORS as exc:
            raise ContainerError(
                f"Docker engine unreachable at {_engine_address(self._client)}: {exc}") from exc
        # The engine also resolves an id prefix: a name such as "abc1" could reach another
        # container. Only the container with exactly this name is ever ours.
        if container.name != self.name:
            raise ContainerNotFound(
                f"no Docker container named {self.name!r} (the engine matched container "
                f"{str(container.id)[:12]} by id prefix; only the exact name is used)")
        return container

    # ------------------------------------------------------------------ sampling
    def read_cgroup_sample(self) -> ContainerSample:
        """One sample from the cgroup files (OSError when they are gone)."""
        if self._cgroup is None:
            raise ContainerError(f"cgroup files of {self.name} are not visible")
        return self._cgroup.read()

    def read_api_sample(self) -> ContainerSample:
        """One sample through the Docker stats API (slow: about a second on some engines)."""
        try:
            stats = self._client.api.stats(self._container.id, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return ContainerSample(time.time(), 0, 0, 0, ContainerState.MISSING)
        except _ENGINE_ERRORS as exc:
            raise ContainerError(f"docker stats of {self.name} failed: {exc}") from exc
        memory = stats.get("memory_stats") or {}
        if "usage" not in memory:  # a stopped container has empty memory_stats
            return self._not_running_sample()
        limit = int(memory.get("limit") or 0)
        stat = memory.get("stats") or {}
        version = 1 if "total_inactive_file" in stat or "rss" in stat else 2
        split = cgroup_memory(usage_bytes=int(memory["usage"]), stat=stat, limit_bytes=0,
                              version=version)
        known = stat and ("anon" in stat or "rss" in stat or "total_rss" in stat)
        return self._keep_limit(ContainerSample(
            stamp_s=time.time(), working_set_bytes=working_set_from_stats(memory),
            usage_bytes=int(memory["usage"]),
            limit_bytes=0 if limit >= _NO_LIMIT_BYTES else limit,
            anon_bytes=split.anon_bytes if known else -1,
            file_bytes=split.file_bytes if known else -1, cgroup_version=version,
            mapped_file_bytes=split.mapped_file_bytes if known else -1))

    def _keep_limit(self, sample: ContainerSample) -> ContainerSample:
        if sample.limit_bytes > 0:
            self._known_limit_bytes = sample.limit_bytes
            return sample
        return dataclasses.replace(sample, limit_bytes=self._known_limit_bytes)

    def _not_running_sample(self) -> ContainerSample:
        state = ContainerState.RESTARTING if self._restarting else ContainerState.STOPPED
        return ContainerSample(time.time(), 0, 0, self._known_limit_bytes, state)

    def _api_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                sample = self.read_api_sample()
            except ContainerError:
                sample = ContainerSample(time.time(), 0, 0, 0, ContainerState.UNKNOWN)
            with self._lock:
                self._latest = sample
            self._stop.wait(max(0.0, self.api_period_s - (time.monotonic() - started)))

    def sample(self) -> ContainerSample:
        """Return the memory now (cgroup) or as of the last stats call (api)."""
        if self._cgroup is not None:
            try:
                sample = self._cgroup.read()
            except (OSError, ValueError):
                return self._not_running_sample()
            return self._keep_limit(sample)
        with self._lock:
            assert self._latest is not None
            return self._latest

    # ------------------------------------------------------------------ control
    def state(self) -> ContainerState:
        """Container state from the engine."""
        try:
            self._container.reload()
        except docker.errors.NotFound:
            return ContainerState.MISSING
        except _ENGINE_ERRORS:
            return ContainerState.UNKNOWN
        return _STATES.get(self._container.status, ContainerState.UNKNOWN)

    def restart(self, *, deadline_s: float) -> float:
        """Restart the container, then poll /api/version until Ollama answers or the deadline."""
        started = time.monotonic()
        self._restarting = True
        try:
            stop_timeout = max(0, min(self.stop_timeout_s, int(deadline_s / 2)))
            try:
                self._container.restart(timeout=stop_timeout)
            except docker.errors.NotFound as exc:
                raise ContainerNotFound(f"container {self.name} disappeared") from exc
            except _ENGINE_ERRORS as exc:
                raise ContainerError(f"restart of {self.name} failed: {exc}") from exc
            return wait_for_ollama(self.ollama_base_url, deadline_s=deadline_s, started=started)
        finally:
            self._restarting = False

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Set the container's memory limit (swap included, so nothing spills to swap)."""
        if limit_bytes <= 0:
            raise ValueError(f"memory limit must be positive, got {limit_bytes}")
        try:
            self._container.update(mem_limit=int(limit_bytes), memswap_limit=int(limit_bytes))
            self._known_limit_bytes = int(limit_bytes)
        except _ENGINE_ERRORS as exc:
            raise ContainerError(
                f"cannot set the memory limit of {self.name} to {limit_bytes} bytes: {exc}"
            ) from exc

    def close(self) -> None:
        """Stop the stats thread and release the engine connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._own_client:
            self._client.close()
