"""Where the simulator's memory limit comes from: the kernel's cgroup, or emulated accounting."""

from __future__ import annotations

import os
from typing import Optional

CGROUP = 'cgroup'
EMULATED = 'emulated'
NO_LIMIT = 1 << 60


def cgroup_memory_limit_bytes() -> Optional[int]:
    """Return this process's cgroup memory limit (v1 or v2); None: unlimited/unreadable."""
    candidates = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']
    for path in candidates:
        try:
            with open(path, encoding='ascii') as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text == 'max':
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return value if value < NO_LIMIT else None
    return None


def choose_limit_mode(requested: str, container_limit_physical_bytes: int) -> str:
    """Resolve 'auto': trust the kernel when a cgroup limit close to the scenario's one applies."""
    if requested in (CGROUP, EMULATED):
        return requested
    limit = cgroup_memory_limit_bytes()
    if limit is not None and container_limit_physical_bytes > 0 \
            and limit <= 2 * container_limit_physical_bytes:
        return CGROUP
    if limit is not None and container_limit_physical_bytes <= 0:
        return CGROUP
    return EMULATED


def own_rss_bytes() -> int:
    """Resident memory of this process."""
    try:
        with open(f'/proc/{os.getpid()}/statm', encoding='ascii') as handle:
            return int(handle.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0
