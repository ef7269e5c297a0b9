"""
Ollama's pre-load fit check, as Ollama v0.12.6 runs it on the simulated machine.

- Unified memory (Jetson Thor, iGPU): free memory is what CUDA reports, which on Thor tracks
  MemFree, so page cache from reading GGUF blobs counts as used (ollama/ollama #12283: "model
  requires more system memory (59.8 GiB) than is available (59.8 GiB)" until
  `echo 3 > /proc/sys/vm/drop_caches`; `server/sched.go` `availableMemoryForGPU` takes the
  smaller of the iGPU's free memory and the system's).
- Memory charged to the container (CPU-only / x86): inside a container Ollama reads free memory
  as the cgroup limit minus its usage (`discover/cpu_linux.go` `getCPUMemByCgroups`), which counts
  page cache too; without a limit, MemAvailable of /proc/meminfo (`getCPUMem`).
The refusal is `llm/server.go`'s: `model requires more system memory (%s) than is available
(%s)` with `format.HumanBytes2`, answered by the API as HTTP 500.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3
NO_LIMIT = 1 << 60


def human_bytes2(n_bytes: int) -> str:
    """Ollama's format.HumanBytes2 (binary units, one decimal)."""
    if n_bytes >= GIB:
        return f'{n_bytes / GIB:.1f} GiB'
    if n_bytes >= MIB:
        return f'{n_bytes / MIB:.1f} MiB'
    if n_bytes >= KIB:
        return f'{n_bytes / KIB:.1f} KiB'
    return f'{n_bytes} B'


def refusal_message(required_bytes: int, available_bytes: int) -> str:
    """Ollama's error text when a model does not fit."""
    return (f'model requires more system memory ({human_bytes2(required_bytes)}) '
            f'than is available ({human_bytes2(max(0, available_bytes))})')


def read_meminfo_bytes(path: str) -> Dict[str, int]:
    """Fields of a /proc/meminfo-format file in bytes ({} when unreadable)."""
    fields: Dict[str, int] = {}
    try:
        with open(path, encoding='ascii') as handle:
            for line in handle:
                key, _, rest = line.partition(':')
                parts = rest.split()
                if parts:
                    fields[key.strip()] = int(parts[0]) * (KIB if len(parts) > 1 else 1)
    except (OSError, ValueError):
        return {}
    return fields


def own_memory_cgroup_dir() -> str:
    """Return this process's memory cgroup folder (v1: from /proc/self/cgroup; else the mount)."""
    try:
        with open('/proc/self/cgroup', encoding='ascii') as handle:
            for line in handle:
                _, controllers, path = line.strip().split(':', 2)
                if 'memory' in controllers.split(','):
                    folder = '/sys/fs/cgroup/memory' + path.rstrip('/')
                    if os.path.exists(os.path.join(folder, 'memory.usage_in_bytes')):
                        return folder
    except (OSError, ValueError):
        pass
    for folder in ('/sys/fs/cgroup/memory', '/sys/fs/cgroup'):
        if os.path.exists(folder + '/memory.usage_in_bytes') \
                or os.path.exists(folder + '/memory.current'):
            return folder
    return ''


def _read_number(path: str) -> Optional[int]:
    try:
        with open(path, encoding='ascii') as handle:
            text = handle.read().strip()
    except OSError:
        return None
    if text == 'max':
        return None
    try:
        return int(text)
    except ValueError:
        return None


def cgroup_free_bytes(folder: str) -> Optional[int]:
    """Limit minus usage of a memory cgroup (None when it has no limit)."""
    if not folder:
        return None
    v2 = os.path.exists(os.path.join(folder, 'memory.current'))
    limit = _read_number(os.path.join(folder, 'memory.max' if v2 else 'memory.limit_in_bytes'))
    usage = _read_number(os.path.join(folder, 'memory.current' if v2 else
                                      'memory.usage_in_bytes'))
    if limit is None or usage is None or limit >= NO_LIMIT:
        return None
    return max(0, limit - usage)


def free_memory_physical_bytes(*, unified: bool, meminfo_path: str) -> Optional[int]:
    """Free memory as Ollama would read it on this machine (this machine's bytes)."""
    meminfo = read_meminfo_bytes(meminfo_path) if meminfo_path else {}
    in_cgroup = cgroup_free_bytes(own_memory_cgroup_dir())
    if unified:
        gpu_free = meminfo.get('MemFree')
        if gpu_free is None:
            return in_cgroup
        return gpu_free if in_cgroup is None else min(gpu_free, in_cgroup)
    if in_cgroup is not None:
        return in_cgroup
    return meminfo.get('MemAvailable')
