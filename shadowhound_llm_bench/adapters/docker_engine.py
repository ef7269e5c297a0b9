"""
The Docker (or Podman) engine as seen from here, whichever container is asked about.

Its connection and errors, the container states, the memory numbers of its stats API, and where
a container's cgroup files are.
"""

from __future__ import annotations

import glob
import os
from typing import Any, List, Mapping, Optional

import docker
import docker.errors
import requests.exceptions

from ..core.memory.memory_reading import ContainerSample, ContainerState
from ..core.memory.memory_sources import cgroup_memory
from .cgroup_memory import NO_LIMIT_BYTES, CgroupMemoryFiles
from .container_backend import ContainerError

# What an engine call can raise: the SDK's errors, and the transport's when the engine is gone
# (the SDK passes requests' connection errors and timeouts through unwrapped).
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)

CONTAINER_STATES = {
    "running": ContainerState.RUNNING,
    "restarting": ContainerState.RESTARTING,
    "created": ContainerState.STOPPED,
    "exited": ContainerState.STOPPED,
    "stopped": ContainerState.STOPPED,  # Podman's word for exited
    "configured": ContainerState.STOPPED,  # Podman: created, never started
    "paused": ContainerState.STOPPED,
    "dead": ContainerState.STOPPED,
    "removing": ContainerState.MISSING,  # gone, whether or not a successor takes its name
}


def working_set_from_stats(memory_stats: Mapping[str, Any]) -> int:
    """Usage minus inactive file cache, as `docker stats` computes it (cgroup v1 and v2)."""
    usage = int(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    return usage - int(inactive) if inactive < usage else usage


def sample_from_stats(memory: Mapping[str, Any], stamp_s: float) -> ContainerSample:
    """Turn the memory_stats of a running container's stats reply into a sample."""
    limit = int(memory.get("limit") or 0)
    stat = memory.get("stats") or {}
    version = 1 if "total_inactive_file" in stat or "rss" in stat else 2
    split = cgroup_memory(usage_bytes=int(memory["usage"]), stat=stat, limit_bytes=0,
                          version=version)
    known = stat and ("anon" in stat or "rss" in stat or "total_rss" in stat)
    return ContainerSample(
        stamp_s=stamp_s, working_set_bytes=working_set_from_stats(memory),
        usage_bytes=int(memory["usage"]),
        limit_bytes=0 if limit >= NO_LIMIT_BYTES else limit,
        anon_bytes=split.anon_bytes if known else -1,
        file_bytes=split.file_bytes if known else -1, cgroup_version=version,
        mapped_file_bytes=split.mapped_file_bytes if known else -1)


def container_cgroup(container_id: str, pid: int = 0,
                     root: str = "/sys/fs/cgroup") -> Optional[CgroupMemoryFiles]:
    """
    Return the memory cgroup of a container when this process can see it, else None.

    The engines' usual paths come first (a test can stand files in for them under `root`), then
    a container started with --cgroup-parent (under a machine-wide cgroup, say), then the cgroup
    the container's main process runs in, which is right for Docker and Podman, v1 and v2 and
    either cgroup driver whenever that PID is visible from here.
    """
    candidates: List[str] = [
        os.path.join(root, "memory", "docker", container_id),  # v1, cgroupfs driver
        os.path.join(root, "memory", "system.slice", f"docker-{container_id}.scope"),
        os.path.join(root, "system.slice", f"docker-{container_id}.scope"),  # v2, systemd
        os.path.join(root, "docker", container_id),  # v2, cgroupfs driver
        os.path.join(root, "memory", "libpod_parent", f"libpod-{container_id}"),  # Podman v1
        os.path.join(root, "machine.slice", f"libpod-{container_id}.scope"),  # Podman v2
    ]
    candidates += sorted(glob.glob(os.path.join(root, "memory", "*", container_id)))
    candidates += sorted(glob.glob(os.path.join(root, "*", container_id)))
    found = CgroupMemoryFiles.first_readable(candidates)
    if found is None and pid > 0:
        found = CgroupMemoryFiles.of_pid(pid, root)
    return found


def engine_address(client: Optional[docker.DockerClient] = None) -> str:
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


def engine_client(timeout_s: float) -> docker.DockerClient:
    """Connect to the engine from the environment; every engine call then has this deadline."""
    try:
        return docker.from_env(timeout=timeout_s)
    except ENGINE_ERRORS as exc:
        raise ContainerError(f"Docker engine unreachable at {engine_address()}: {exc}") from exc
