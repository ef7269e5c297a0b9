"""
Every place a model's memory can show up, parsed into typed records (no I/O here).

On a machine with a discrete GPU or a CPU-only Ollama, a model's memory is charged to the
Ollama container's memory cgroup. On a unified-memory Jetson (Thor) the GPU driver makes the
allocations: they lower the host's MemAvailable / MemFree but are not charged to the container,
and per-process GPU memory is read from `nvidia-smi --query-compute-apps` (NvMapMemUsed is
absent on Thor: rbonghi/jetson_stats PR #849). Which sources track model memory on a given
machine is decided by calibration (core/memory/memory_calibration.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from ...common import kernel_text

# Source names, as configured in `memory.sources` and recorded by calibration.
CGROUP_WORKING_SET = "cgroup_working_set"  # usage minus inactive file, as `docker stats`
CGROUP_ANON = "cgroup_anon"  # anonymous pages charged to the container
CGROUP_MAPPED = "cgroup_mapped"  # anonymous plus mapped file pages (mmap'd weights)
GPU_PROCESSES = "gpu_processes"  # per-process GPU memory (NVML or nvidia-smi)
HOST_USED = "host_used"  # MemTotal - MemAvailable, less ROS and the rest of the machine
OLLAMA_PS = "ollama_ps"  # /api/ps size: Ollama's own estimate of what it loaded
NVMAP = "nvmap"  # NvMapMemUsed of older Jetsons (absent on Thor)

ALL_SOURCES: Tuple[str, ...] = (CGROUP_WORKING_SET, CGROUP_ANON, CGROUP_MAPPED, GPU_PROCESSES,
                                HOST_USED, OLLAMA_PS, NVMAP)
# Sources that measure memory (Ollama's /api/ps is its own estimate, shown beside them).
MEASURING_SOURCES: Tuple[str, ...] = (CGROUP_WORKING_SET, CGROUP_ANON, CGROUP_MAPPED,
                                      GPU_PROCESSES, HOST_USED, NVMAP)

_NOT_A_NUMBER = {"[n/a]", "n/a", "[not supported]", "not supported", "[unknown error]", ""}


class MemorySourceError(ValueError):
    """A memory source answered something that cannot be parsed."""


@dataclass(frozen=True)
class HostMeminfo:
    """
    Total and available memory of the machine Ollama and ROS share, from its meminfo (bytes).

    free_bytes (MemFree) and cached_bytes (Cached) are -1 where not read (a file without them,
    a simulated machine that derives only what is available); nvmap_bytes (NvMapMemUsed of
    older Jetsons) is None where absent.
    """

    total_bytes: int
    available_bytes: int
    free_bytes: int = -1
    cached_bytes: int = -1
    nvmap_bytes: Optional[int] = None

    @property
    def used_bytes(self) -> int:
        """Memory the machine cannot hand out now: total minus available."""
        return max(0, self.total_bytes - self.available_bytes)


@dataclass(frozen=True)
class CgroupMemory:
    """A memory cgroup's charge, split into anonymous and file pages (bytes)."""

    usage_bytes: int
    anon_bytes: int
    file_bytes: int
    inactive_file_bytes: int
    limit_bytes: int  # 0 = no limit
    version: int  # 1 or 2
    mapped_file_bytes: int = 0  # file pages mapped by the cgroup's processes

    @property
    def working_set_bytes(self) -> int:
        """Usage minus inactive file cache, as `docker stats` computes it."""
        inactive = self.inactive_file_bytes
        return self.usage_bytes - inactive if inactive < self.usage_bytes else self.usage_bytes


@dataclass(frozen=True)
class GpuProcess:
    """One process holding GPU memory (nvidia-smi --query-compute-apps or NVML)."""

    pid: int
    process_name: str
    used_bytes: int


@dataclass(frozen=True)
class OllamaPsMemory:
    """What /api/ps says Ollama holds: `size` (total) and `size_vram` (on the GPU), in bytes."""

    models: int
    size_bytes: int
    size_vram_bytes: int


@dataclass(frozen=True)
class SourceSnapshot:
    """Every source read at one instant; None where a source is absent, with the reason."""

    stamp_s: float
    cgroup: Optional[CgroupMemory] = None
    meminfo: Optional[HostMeminfo] = None
    gpu_processes: Optional[Tuple[GpuProcess, ...]] = None
    ollama_ps: Optional[OllamaPsMemory] = None
    ros_live_bytes: int = 0
    errors: Mapping[str, str] = field(default_factory=dict)


def parse_meminfo(text: str) -> Dict[str, int]:
    """Fields of a Linux meminfo file in bytes (common/kernel_text.py reads every meminfo)."""
    try:
        return kernel_text.parse_meminfo(text)
    except kernel_text.KernelTextError as exc:
        raise MemorySourceError(str(exc)) from exc


def host_meminfo(fields: Mapping[str, int]) -> HostMeminfo:
    """Pick the fields the product needs; MemTotal and MemAvailable are required."""
    missing = [name for name in ("MemTotal", "MemAvailable") if name not in fields]
    if missing:
        raise MemorySourceError(f"meminfo lacks {', '.join(missing)}")
    return HostMeminfo(total_bytes=fields["MemTotal"], available_bytes=fields["MemAvailable"],
                       free_bytes=fields.get("MemFree", -1),
                       cached_bytes=fields.get("Cached", -1),
                       nvmap_bytes=fields.get("NvMapMemUsed"))


def parse_cgroup_stat(text: str) -> Dict[str, int]:
    """Parse a cgroup `memory.stat` file (lines "name value") into a dict."""
    return kernel_text.parse_memory_stat(text)


def cgroup_memory(*, usage_bytes: int, stat: Mapping[str, int], limit_bytes: int,
                  version: int) -> CgroupMemory:
    """
    Split a cgroup's usage into anonymous and file pages.

    v2 names them `anon` / `file`; v1 `total_rss` / `total_cache` (hierarchical) or `rss` /
    `cache`. Without either, anonymous pages are usage minus file pages.
    """
    def key(hierarchical: str, local: str) -> str:
        return hierarchical if hierarchical in stat else local

    if version == 2:
        anon_key, file_key, inactive_key = "anon", "file", "inactive_file"
        mapped_key = "file_mapped"
    else:
        anon_key, file_key = key("total_rss", "rss"), key("total_cache", "cache")
        inactive_key = key("total_inactive_file", "inactive_file")
        mapped_key = key("total_mapped_file", "mapped_file")
    file_bytes = int(stat.get(file_key, 0))
    anon_bytes = int(stat[anon_key]) if anon_key in stat else max(0, usage_bytes - file_bytes)
    return CgroupMemory(usage_bytes=int(usage_bytes), anon_bytes=anon_bytes,
                        file_bytes=file_bytes, inactive_file_bytes=int(stat.get(inactive_key, 0)),
                        limit_bytes=int(limit_bytes), version=version,
                        mapped_file_bytes=int(stat.get(mapped_key, 0)))


def parse_compute_apps(text: str) -> Tuple[GpuProcess, ...]:
    """
    `nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits`.

    used_memory is MiB; "[N/A]" (a GPU that cannot tell) counts as 0. The process name may
    contain commas, so the first and last fields are split off.
    """
    processes = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.lower().startswith("no running"):
            continue
        head, _, used = line.rpartition(",")
        pid_text, _, name = head.partition(",")
        try:
            pid = int(pid_text.strip())
        except ValueError as exc:
            raise MemorySourceError(
                f"nvidia-smi line {number} is not 'pid, process_name, used_memory': "
                f"{line!r}") from exc
        used = used.strip()
        if used.lower() in _NOT_A_NUMBER:
            used_mib = 0.0
        else:
            try:
                used_mib = float(used)
            except ValueError as exc:
                raise MemorySourceError(
                    f"nvidia-smi line {number}: used_memory {used!r} is not MiB") from exc
        processes.append(GpuProcess(pid=pid, process_name=name.strip(),
                                    used_bytes=int(used_mib * 1024 * 1024)))
    return tuple(processes)


def ollama_ps_memory(entries: Iterable[Mapping[str, Any]], *,
                     memory_scale: float = 1.0) -> OllamaPsMemory:
    """Sum /api/ps sizes (scaled to this machine's bytes, as the footprint predictor does)."""
    size = vram = count = 0
    for entry in entries:
        count += 1
        size += int(entry.get("size") or 0)
        vram += int(entry.get("size_vram") or 0)
    return OllamaPsMemory(models=count, size_bytes=int(size * memory_scale),
                          size_vram_bytes=int(vram * memory_scale))


def gpu_bytes_of(processes: Sequence[GpuProcess], name_pattern: str) -> int:
    """GPU memory of the processes whose name matches (Ollama's runners), bytes."""
    pattern = re.compile(name_pattern) if name_pattern else None
    return sum(p.used_bytes for p in processes
               if pattern is None or pattern.search(p.process_name))


def source_values(snapshot: SourceSnapshot, *, gpu_name_pattern: str = "",
                  other_host_bytes: int = 0) -> Dict[str, int]:
    """
    Return the value of every source present in a snapshot (bytes); absent sources are left out.

    host_used is the machine's used memory less live ROS memory and `other_host_bytes` (what
    the rest of the machine held when calibration found it empty of models).
    """
    values: Dict[str, int] = {}
    if snapshot.cgroup is not None:
        values[CGROUP_WORKING_SET] = snapshot.cgroup.working_set_bytes
        values[CGROUP_ANON] = snapshot.cgroup.anon_bytes
        values[CGROUP_MAPPED] = snapshot.cgroup.anon_bytes + snapshot.cgroup.mapped_file_bytes
    if snapshot.meminfo is not None:
        values[HOST_USED] = max(0, snapshot.meminfo.used_bytes - snapshot.ros_live_bytes
                                - other_host_bytes)
        if snapshot.meminfo.nvmap_bytes is not None:
            values[NVMAP] = snapshot.meminfo.nvmap_bytes
    if snapshot.gpu_processes is not None:
        values[GPU_PROCESSES] = gpu_bytes_of(snapshot.gpu_processes, gpu_name_pattern)
    if snapshot.ollama_ps is not None:
        values[OLLAMA_PS] = snapshot.ollama_ps.size_bytes
    return values


def counted_in_available_bytes(snapshot: SourceSnapshot, chosen: Sequence[str]) -> int:
    """
    Bytes of the chosen sources that MemAvailable also counts (reclaimable file pages).

    The budget adds model memory to the host's available memory; page cache that is in both
    (active file pages in the working set, mapped weights) must be taken out once.
    """
    cgroup = snapshot.cgroup
    if cgroup is None:
        return 0
    if CGROUP_WORKING_SET in chosen:
        return max(0, cgroup.working_set_bytes - cgroup.anon_bytes)
    if CGROUP_MAPPED in chosen:
        return cgroup.mapped_file_bytes
    return 0


def parse_sources_setting(value: Any) -> Tuple[str, ...]:
    """`memory.sources`: "auto" (empty tuple: calibration chooses) or a list of source names."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    names = [str(item).strip() for item in items if str(item).strip()]
    if names in ([], ["auto"]):
        return ()
    unknown = [n for n in names if n not in MEASURING_SOURCES]
    if unknown:
        raise MemorySourceError(
            f"memory.sources: unknown source(s) {', '.join(unknown)}; use auto or any of "
            f"{', '.join(MEASURING_SOURCES)}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class MemorySourceSettings:
    """Where the memory sources are read (node parameters memory.* and the CLI flags)."""

    meminfo_path: str = "/proc/meminfo"
    nvidia_smi_command: str = "nvidia-smi"
    drop_caches_path: str = "/proc/sys/vm/drop_caches"
    sources: Tuple[str, ...] = ()  # empty: auto (calibration chooses)

    def __post_init__(self) -> None:
        for name in ("meminfo_path", "nvidia_smi_command", "drop_caches_path"):
            if not str(getattr(self, name)).strip():
                raise MemorySourceError(f"memory.{name} must not be empty")
        parse_sources_setting(list(self.sources))
