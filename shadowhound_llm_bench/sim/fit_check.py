"""
Ollama's pre-load fit check, as Ollama v0.12.6 runs it on the simulated machine.

- Unified memory (Jetson Thor, iGPU): free memory is what CUDA reports for the iGPU, which on
  Thor tracks MemFree, so page cache from reading GGUF blobs counts as used (ollama/ollama
  #12283: "model requires more system memory (59.8 GiB) than is available (59.8 GiB)" until
  `echo 3 > /proc/sys/vm/drop_caches`); `server/sched.go` `availableMemoryForGPU` takes the
  smaller of the iGPU's free memory and the system's (MemAvailable).
- Memory charged to the container (CPU-only / x86): MemAvailable of /proc/meminfo
  (`discover/cpu_linux.go` `GetCPUMem`). v0.12.6 does not read the container's cgroup (the
  cgroup v2 limit is read from v0.13.0 on, `getCPUMemByCgroups`), so a container limit below
  the machine's memory is enforced by the kernel only.
The refusal is `llm/server.go`'s: `model requires more system memory (%s) than is available
(%s)` with `format.HumanBytes2`, answered by the API as HTTP 500.
"""

from __future__ import annotations

from typing import Dict, Optional

from ..common.kernel_text import parse_meminfo

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3


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
    try:
        with open(path, encoding='ascii') as handle:
            return parse_meminfo(handle.read())
    except (OSError, ValueError):
        return {}


def free_memory_physical_bytes(*, unified: bool, meminfo_path: str) -> Optional[int]:
    """Free memory as Ollama v0.12.6 reads it on this machine (this machine's bytes)."""
    meminfo = read_meminfo_bytes(meminfo_path) if meminfo_path else {}
    available = meminfo.get('MemAvailable')
    if unified and 'MemFree' in meminfo:
        return meminfo['MemFree'] if available is None else min(meminfo['MemFree'], available)
    return available
