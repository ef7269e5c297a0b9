"""The Ollama Docker (or Podman) container: memory from cgroup files or the stats API, restart."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, List, Optional, Tuple

import docker
import docker.errors

from ..core.memory.memory_reading import ContainerSample, ContainerState
from .cgroup_memory import CgroupMemoryFiles
from .container_backend import ContainerError, ContainerNotFound, wait_for_ollama
from .docker_engine import (
    CONTAINER_STATES, ENGINE_ERRORS, container_cgroup, engine_address, engine_client,
    sample_from_stats)

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ContainerIdChange:
    """The container of the configured name is another one now (recreated, or gone)."""

    stamp_s: float
    old_id: str  # "" when there was none
    new_id: str  # "" when it is gone

    def describe(self, name: str) -> str:
        """Describe the change for the log and the report."""
        if not self.new_id:
            return f"container {name} ({self.old_id[:12]}) is gone; looking it up by name"
        if not self.old_id:
            return f"container {name} found: ID {self.new_id[:12]}"
        return (f"container {name} was recreated: ID {self.old_id[:12]} -> {self.new_id[:12]}; "
                "memory and restarts follow the new one")


class DockerContainer:
    """
    Ollama in a Docker (or Podman) container, always found by its name.

    sampling="auto" reads the container's cgroup files when they are visible from here and
    otherwise samples the engine's stats API (about a second per call) on a background thread,
    so sample() never waits for the engine. "cgroup" or "api" force one path. Whenever the
    container is missing, stopped, restarting or recreated, a watcher thread looks it up by name
    again (at most every resolve_period_s) and finds its new cgroup files, so sampling is back on
    the fast path within one period of it running again; every change of container ID is kept
    (id_changes()). Every engine call made through the client built here has the deadline
    engine_timeout_s; ContainerError when the engine is unreachable (naming DOCKER_HOST),
    ContainerNotFound when no container has that name (unless wait_for_container, which samples
    MISSING until one appears). owns_client: close the given client on close().
    """

    measures_memory = True
    unmeasured = ""

    def __init__(self, *, name: str, ollama_base_url: str,
                 docker_client: Optional[docker.DockerClient] = None, sampling: str = "auto",
                 api_period_s: float = 1.0, stop_timeout_s: int = 10,
                 engine_timeout_s: float = 30.0, resolve_period_s: float = 0.2,
                 wait_for_container: bool = False, owns_client: bool = False,
                 engine: str = "docker", cgroup_root: str = "/sys/fs/cgroup") -> None:
        if sampling not in ("auto", "cgroup", "api"):
            raise ValueError(f"sampling must be auto, cgroup or api, got {sampling!r}")
        self.name = name
        self.ollama_base_url = ollama_base_url
        self.stop_timeout_s = stop_timeout_s
        self.api_period_s = api_period_s
        self.resolve_period_s = resolve_period_s
        self.cgroup_root = cgroup_root
        self._sampling_mode = sampling
        self._client = docker_client or engine_client(engine_timeout_s)
        self._own_client = docker_client is None or owns_client
        self.engine = engine
        self.selection_reason = ""
        self._lock = threading.Lock()
        self._restarting = False
        self._id_changes: List[ContainerIdChange] = []
        self._container: Any = None
        self._cgroup: Optional[CgroupMemoryFiles] = None
        self._known_limit_bytes = 0
        self._latest: Optional[ContainerSample] = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        try:
            self._container = self._get()
        except ContainerNotFound:
            if not wait_for_container:
                self._close_own_client()
                raise
        except ContainerError:
            self._close_own_client()
            raise
        if self._container is not None:
            # The limit belongs to the container's configuration, not to its processes: readings
            # taken while it restarts (no cgroup yet, or one not limited yet) must not drop it.
            self._known_limit_bytes = int(
                (self._container.attrs.get("HostConfig") or {}).get("Memory") or 0)
            self._cgroup = self._find_cgroup(self._container)
        if sampling == "cgroup" and self._cgroup is None:
            self._close_own_client()
            raise ContainerError(
                f"the memory cgroup of container {name} is not visible under {cgroup_root}")
        if self._cgroup is None:
            self._latest = self._slow_sample()
        self._thread = threading.Thread(target=self._watch_loop, name=f"docker-watch-{name}",
                                        daemon=True)
        self._thread.start()

    def _close_own_client(self) -> None:
        if self._own_client:
            self._client.close()

    @property
    def sampling(self) -> str:
        """Which path samples come from now: cgroup or api."""
        return "cgroup" if self._cgroup is not None else "api"

    @property
    def container_id(self) -> str:
        """Full ID of the container now ("" while none has the name)."""
        container = self._container
        return str(container.id) if container is not None else ""

    def process_ids(self) -> Optional[List[int]]:
        """List the container's processes from its cgroup files; None when they are not visible."""
        return self._cgroup.pids() if self._cgroup is not None else None

    def oom_kills(self) -> Optional[int]:
        """Return the kernel's OOM kills in the container's cgroup (None without its files)."""
        cgroup = self._cgroup
        return cgroup.oom_kills() if cgroup is not None else None

    def engine_process_ids(self) -> List[int]:
        """List the container's processes as the engine does (`docker top`); [] when stopped."""
        container = self._container
        if container is None:
            return []
        try:
            top = container.top(ps_args="-o pid")
            return [int(row[0]) for row in top.get("Processes") or []]
        except Exception:  # engine gone or container stopped: nothing listed now
            return []

    def id_changes(self) -> List[ContainerIdChange]:
        """Every change of the container behind the name since this backend started."""
        with self._lock:
            return list(self._id_changes)

    def describe(self) -> str:
        """Name, engine, ID and memory path, for the log and /diagnostics."""
        cgroup = self._cgroup
        return (f"{self.engine} container {self.name} (ID {self.container_id[:12] or 'none yet'})"
                f" on {engine_address(self._client)}, memory from "
                f"{'cgroup files ' + cgroup.directory if cgroup else 'the stats API'}")

    def _get(self) -> Any:
        try:
            container = self._client.containers.get(self.name)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"no Docker container named {self.name!r}") from exc
        except ENGINE_ERRORS as exc:
            raise ContainerError(
                f"Docker engine unreachable at {engine_address(self._client)}: {exc}") from exc
        # The engine also resolves an id prefix: a name such as "abc1" could reach another
        # container. Only the container with exactly this name is ever ours.
        if container.name != self.name:
            raise ContainerNotFound(
                f"no Docker container named {self.name!r} (the engine matched container "
                f"{str(container.id)[:12]} by id prefix; only the exact name is used)")
        return container

    def image_ref(self) -> Tuple[str, str]:
        """Return the container's image name and digest (repository digest, else image id)."""
        container = self._get()
        image = container.image
        name = (image.tags or [""])[0] or str((container.attrs.get("Config") or {}).get("Image")
                                              or "")
        digests = image.attrs.get("RepoDigests") or []
        return name, (str(digests[0]).split("@", 1)[-1] if digests else str(image.id))

    def _find_cgroup(self, container: Any) -> Optional[CgroupMemoryFiles]:
        if self._sampling_mode == "api":
            return None
        state = container.attrs.get("State") or {}
        if not state.get("Running"):
            return None
        return container_cgroup(str(container.id), int(state.get("Pid") or 0), self.cgroup_root)

    def _resolve(self) -> None:
        """Look the container up by name again; follow a new ID and find its cgroup files."""
        try:
            container: Any = self._client.containers.get(self.name)
        except docker.errors.NotFound:
            container = None
        except ENGINE_ERRORS as exc:
            _LOG.debug("cannot look up container %s: %s", self.name, exc)
            return
        if container is not None and container.name != self.name:
            container = None  # matched by id prefix: another container, never ours
        new_id = str(container.id) if container is not None else ""
        cgroup = self._find_cgroup(container) if container is not None else None
        with self._lock:  # the watcher and the guard's thread may both look: one records
            old_id = self.container_id
            if new_id != old_id:
                change = ContainerIdChange(time.time(), old_id, new_id)
                self._id_changes.append(change)
                _LOG.warning("%s", change.describe(self.name))
                if container is not None:
                    self._known_limit_bytes = int(
                        (container.attrs.get("HostConfig") or {}).get("Memory") or 0)
            self._container = container
            self._cgroup = cgroup

    # ------------------------------------------------------------------ sampling
    def read_cgroup_sample(self) -> ContainerSample:
        """One sample from the cgroup files (OSError when they are gone)."""
        cgroup = self._cgroup
        if cgroup is None:
            raise ContainerError(f"cgroup files of {self.name} are not visible")
        return cgroup.read()

    def read_api_sample(self) -> ContainerSample:
        """One sample through the Docker stats API (slow: about a second on some engines)."""
        container = self._container
        if container is None:
            return ContainerSample(time.time(), 0, 0, self._known_limit_bytes,
                                   ContainerState.MISSING)
        # The engine reads the cgroup somewhere during the call: the reading is as old as the
        # request, never newer (what the guard's freshness rule relies on).
        asked_at_s = time.time()
        try:
            stats = self._client.api.stats(container.id, stream=False, one_shot=True)
        except docker.errors.NotFound:
            return ContainerSample(time.time(), 0, 0, self._known_limit_bytes,
                                   ContainerState.MISSING)
        except ENGINE_ERRORS as exc:
            raise ContainerError(f"docker stats of {self.name} failed: {exc}") from exc
        memory = stats.get("memory_stats") or {}
        if "usage" not in memory:  # a stopped container has empty memory_stats
            return self._not_running_sample()
        return self._keep_limit(sample_from_stats(memory, asked_at_s))

    def _keep_limit(self, sample: ContainerSample) -> ContainerSample:
        if sample.limit_bytes > 0:
            self._known_limit_bytes = sample.limit_bytes
            return sample
        return dataclasses.replace(sample, limit_bytes=self._known_limit_bytes)

    def _not_running_sample(self) -> ContainerSample:
        if self._container is None:
            state = ContainerState.MISSING
        else:
            state = ContainerState.RESTARTING if self._restarting else ContainerState.STOPPED
        return ContainerSample(time.time(), 0, 0, self._known_limit_bytes, state)

    def _slow_sample(self) -> ContainerSample:
        """Read without cgroup files: nothing to read while it is down, else the stats API."""
        container = self._container
        if container is None or not (container.attrs.get("State") or {}).get("Running"):
            return self._not_running_sample()
        try:
            return self.read_api_sample()
        except ContainerError:
            return ContainerSample(time.time(), 0, 0, 0, ContainerState.UNKNOWN)

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if self._cgroup is None:
                self._resolve()
            if self._cgroup is None:
                sample = self._slow_sample()
                if sample.state is ContainerState.MISSING and self._container is not None:
                    self._resolve()  # removed between look-up and stats: look again at once
                with self._lock:
                    self._latest = sample
            # Quick looks while nothing runs; one stats call per period while one does.
            period = self.api_period_s
            if self._cgroup is not None or self._latest is None or \
                    self._latest.state is not ContainerState.RUNNING:
                period = self.resolve_period_s if self._cgroup is None else self.api_period_s
            self._wake.wait(max(0.0, period - (time.monotonic() - started)))
            self._wake.clear()

    def sample(self) -> ContainerSample:
        """Return the memory now (cgroup) or as of the watcher's last reading (api)."""
        cgroup = self._cgroup
        if cgroup is not None:
            try:
                sample = cgroup.read()
            except (OSError, ValueError):
                # Gone: stopped, restarting or removed. The watcher looks it up again now.
                with self._lock:
                    if self._cgroup is cgroup:
                        self._cgroup = None
                        self._latest = self._not_running_sample()
                self._wake.set()
                return self._not_running_sample()
            return self._keep_limit(sample)
        with self._lock:
            latest = self._latest
        return latest if latest is not None else self._not_running_sample()

    # ------------------------------------------------------------------ control
    def state(self) -> ContainerState:
        """Container state from the engine (looked up by name again when it is gone)."""
        container = self._container
        if container is None:
            self._resolve()
            container = self._container
            if container is None:
                return ContainerState.MISSING
        try:
            container.reload()
        except docker.errors.NotFound:
            self._resolve()
            if self._container is None:
                return ContainerState.MISSING
            return self.state()
        except ENGINE_ERRORS:
            return ContainerState.UNKNOWN
        state = CONTAINER_STATES.get(container.status, ContainerState.UNKNOWN)
        if state is ContainerState.RUNNING and self._cgroup is None:
            self._wake.set()  # running again: the watcher finds its cgroup files
        return state

    def wait_until_present(self, *, deadline_s: float) -> ContainerState:
        """
        Wait up to deadline_s for a container of the name to exist again; its state then.

        `docker compose up` and jetson-containers remove a container and create the new one a
        moment later: in between the name stands for nothing, which is not "removed for good".
        """
        end = time.monotonic() + deadline_s
        state = self.state()
        while state is ContainerState.MISSING and time.monotonic() < end:
            self._stop.wait(self.resolve_period_s)
            state = self.state()
        return state

    def _successor(self, old_id: str, deadline_s: float) -> Any:
        """Wait for the name to stand for a container other than old_id; None at the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            self._resolve()
            container = self._container
            if container is not None and str(container.id) != old_id:
                return container
            if time.monotonic() >= end:
                return None
            self._stop.wait(self.resolve_period_s)

    def restart(self, *, deadline_s: float) -> float:
        """
        Restart the container, then poll /api/version until Ollama answers or the deadline.

        A container being removed (recreated under its name) is not restarted: its successor
        is, once the name stands for it.
        """
        started = time.monotonic()
        self._restarting = True
        try:
            stop_timeout = max(0, min(self.stop_timeout_s, int(deadline_s / 2)))
            if self._container is None:
                self._resolve()
            container = self._container
            if container is None:
                raise ContainerNotFound(
                    f"no container named {self.name} to restart (gone: recreate it)")
            try:
                container.restart(timeout=stop_timeout)
            except docker.errors.APIError as exc:
                text = str(exc).lower()  # Docker: "marked for removal"; Podman: "no such"
                gone = isinstance(exc, docker.errors.NotFound) or "removal" in text \
                    or "no such container" in text
                if not gone:
                    raise ContainerError(f"restart of {self.name} failed: {exc}") from exc
                successor = self._successor(str(container.id), min(5.0, deadline_s / 2))
                if successor is None:
                    raise ContainerNotFound(
                        f"container {self.name} is gone and no new one took its name") \
                        from exc
                try:
                    successor.restart(timeout=stop_timeout)
                except ENGINE_ERRORS as again:
                    raise ContainerError(f"restart of {self.name} failed: {again}") from again
            except ENGINE_ERRORS as exc:
                raise ContainerError(f"restart of {self.name} failed: {exc}") from exc
            self._wake.set()
            return wait_for_ollama(self.ollama_base_url, deadline_s=deadline_s, started=started)
        finally:
            self._restarting = False
            self._resolve()  # new main process, maybe a new cgroup: fast path again

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Set the container's memory limit (swap included, so nothing spills to swap)."""
        if limit_bytes <= 0:
            raise ValueError(f"memory limit must be positive, got {limit_bytes}")
        container = self._container
        if container is None:
            raise ContainerNotFound(f"no container named {self.name} to limit")
        try:
            try:
                container.update(mem_limit=int(limit_bytes), memswap_limit=int(limit_bytes))
            except docker.errors.NotFound:
                self._libpod_update(str(container.id), int(limit_bytes))
            self._known_limit_bytes = int(limit_bytes)
        except ENGINE_ERRORS as exc:
            raise ContainerError(
                f"cannot set the memory limit of {self.name} to {limit_bytes} bytes: {exc}"
            ) from exc

    def _libpod_update(self, container_id: str, limit_bytes: int) -> None:
        """Podman's Docker-compatible API has no update (4.3): its own API has one."""
        api = self._client.api
        response = api.post(f"{api.base_url}/v4.0.0/libpod/containers/{container_id}/update",
                            json={"memory": {"limit": limit_bytes, "swap": limit_bytes}},
                            timeout=api.timeout)
        if response.status_code >= 300:
            raise ContainerError(f"Podman refused the update ({response.status_code}): "
                                 f"{response.text.strip()}")

    def close(self) -> None:
        """Stop the watcher thread and release the engine connection."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._close_own_client()
