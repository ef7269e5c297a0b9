"""A memory cgroup read straight from /sys/fs/cgroup (v1 or v2), and how to find one."""

from __future__ import annotations

import os
import time
from typing import Dict, Iterable, Optional

from ..core.memory.memory_reading import ContainerSample
from ..core.memory.memory_sources import cgroup_memory, parse_cgroup_stat

# cgroup v1 reports "no limit" as a page-rounded huge number.
NO_LIMIT_BYTES = 1 << 60

_USAGE_FILES = ("memory.usage_in_bytes", "memory.current")


def _read_int(path: str) -> int:
    with open(path, "r", encoding="ascii") as handle:
        text = handle.read().strip()
    return 0 if text == "max" else int(text)


def _read_stat(path: str) -> Dict[str, int]:
    with open(path, "r", encoding="ascii") as handle:
        return parse_cgroup_stat(handle.read())


def memory_cgroup_of_pid(pid: int, proc_root: str = "/proc") -> Optional[str]:
    """
    Return the memory cgroup path of a process as /proc/<pid>/cgroup names it, else None.

    The v1 memory controller's line wins over the v2 line ("0::"), because on a hybrid host the
    memory controller is bound to v1 and the v2 tree has no memory files.
    """
    try:
        with open(os.path.join(proc_root, str(pid), "cgroup"), "r", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except (OSError, ValueError):
        return None
    unified = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
        if controllers == "":
            unified = path
    return unified


def memory_cgroup_dir(cgroup_path: str, root: str = "/sys/fs/cgroup") -> Optional[str]:
    """Return the readable directory of a cgroup path under v1 (memory/) or v2, else None."""
    relative = cgroup_path.lstrip("/")
    for directory in (os.path.join(root, "memory", relative), os.path.join(root, relative)):
        if any(os.access(os.path.join(directory, f), os.R_OK) for f in _USAGE_FILES):
            return directory.rstrip("/")
    return None


class CgroupMemoryFiles:
    """A memory cgroup read straight from /sys/fs/cgroup (v1 or v2)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.version = 1 if os.path.exists(os.path.join(directory, "memory.usage_in_bytes")) else 2

    @staticmethod
    def first_readable(directories: Iterable[str]) -> Optional["CgroupMemoryFiles"]:
        """Return the first directory holding readable memory files, else None."""
        for directory in directories:
            if any(os.access(os.path.join(directory, f), os.R_OK) for f in _USAGE_FILES):
                return CgroupMemoryFiles(directory)
        return None

    @staticmethod
    def of_pid(pid: int, root: str = "/sys/fs/cgroup",
               proc_root: str = "/proc") -> Optional["CgroupMemoryFiles"]:
        """Return the memory cgroup a process runs in, when this process can see both."""
        path = memory_cgroup_of_pid(pid, proc_root)
        directory = memory_cgroup_dir(path, root) if path else None
        return CgroupMemoryFiles(directory) if directory else None

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
        if limit >= NO_LIMIT_BYTES:
            limit = 0
        split = cgroup_memory(usage_bytes=usage, stat=stat, limit_bytes=limit,
                              version=self.version)
        return ContainerSample(stamp_s=stamp, working_set_bytes=split.working_set_bytes,
                               usage_bytes=usage, limit_bytes=limit, anon_bytes=split.anon_bytes,
                               file_bytes=split.file_bytes, cgroup_version=self.version,
                               mapped_file_bytes=split.mapped_file_bytes)

    def oom_kills(self) -> Optional[int]:
        """Return how many processes the kernel OOM-killed in this cgroup (None: unreadable)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            return int(_read_stat(os.path.join(self.directory, name))["oom_kill"])
        except (OSError, KeyError, ValueError):
            return None

    def pids(self) -> list:
        """List the processes in the cgroup itself (empty when it is gone)."""
        try:
            with open(os.path.join(self.directory, "cgroup.procs"), "r",
                      encoding="ascii") as handle:
                return [int(line) for line in handle if line.strip()]
        except OSError:
            return []
