"""
Reads every memory source: host meminfo, per-process GPU memory, /api/ps, the page-cache drop.

The container's cgroup is read by the container backend (its samples carry anonymous and file
pages); this module adds what lies outside the container. Every external call has a deadline.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..core.memory.memory_reading import ContainerSample
from ..core.memory.memory_sources import (CgroupMemory, GpuProcess, HostMeminfo, MemorySourceError,
                                          OllamaPsMemory, SourceSnapshot, host_meminfo,
                                          ollama_ps_memory, parse_compute_apps, parse_meminfo)

_LOG = logging.getLogger(__name__)

DEFAULT_MEMINFO_PATH = "/proc/meminfo"
DEFAULT_NVIDIA_SMI_COMMAND = "nvidia-smi"
DEFAULT_DROP_CACHES_PATH = "/proc/sys/vm/drop_caches"
COMPUTE_APPS_ARGS = ("--query-compute-apps=pid,process_name,used_memory",
                     "--format=csv,noheader,nounits")
# Ollama's runner processes (the server and `ollama runner`); other GPU users are the robot's.
DEFAULT_GPU_PROCESS_PATTERN = r"ollama|llama"


class GpuMemoryUnavailable(Exception):
    """No per-process GPU memory on this machine (no NVML, no nvidia-smi), with the reason."""


def read_host_meminfo(path: str = DEFAULT_MEMINFO_PATH) -> HostMeminfo:
    """Read a Linux-format meminfo file; MemorySourceError with the path when it cannot."""
    try:
        with open(path, "r", encoding="ascii") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise MemorySourceError(f"cannot read {path}: {exc}") from exc
    try:
        return host_meminfo(parse_meminfo(text))
    except MemorySourceError as exc:
        raise MemorySourceError(f"{path}: {exc}") from exc


class NvidiaSmiGpu:
    """Per-process GPU memory from `nvidia-smi --query-compute-apps` (Jetson Thor and dGPUs)."""

    def __init__(self, *, command: str = DEFAULT_NVIDIA_SMI_COMMAND,
                 deadline_s: float = 3.0) -> None:
        argv = shlex.split(command)
        if not argv:
            raise ValueError("memory.nvidia_smi_command is empty")
        if deadline_s <= 0:
            raise ValueError("deadline_s must be positive")
        self.argv = argv
        self.deadline_s = deadline_s
        self.name = "nvidia-smi"

    def available(self) -> bool:
        """Tell whether the command can be found (a path or a name on PATH)."""
        program = self.argv[0]
        if os.sep in program:
            return os.access(program, os.X_OK)
        return shutil.which(program) is not None

    def processes(self) -> Tuple[GpuProcess, ...]:
        """One query within the deadline; GpuMemoryUnavailable when it fails or is late."""
        argv = self.argv + list(COMPUTE_APPS_ARGS)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.deadline_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise GpuMemoryUnavailable(
                f"{self.argv[0]} did not answer within {self.deadline_s:g} s") from exc
        except OSError as exc:
            raise GpuMemoryUnavailable(f"cannot run {self.argv[0]}: {exc}") from exc
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()
            raise GpuMemoryUnavailable(f"{self.argv[0]} exited {done.returncode}: "
                                       f"{why[-1] if why else 'no message'}")
        try:
            return parse_compute_apps(done.stdout)
        except MemorySourceError as exc:
            raise GpuMemoryUnavailable(str(exc)) from exc


class NvmlGpu:
    """Per-process GPU memory from NVIDIA's NVML binding (PyPI nvidia-ml-py), when installed."""

    def __init__(self, *, deadline_s: float = 3.0) -> None:
        try:
            import pynvml  # noqa: F401  (optional dependency)
        except ImportError as exc:
            raise GpuMemoryUnavailable("NVML binding (nvidia-ml-py) is not installed") from exc
        self._nvml = pynvml
        self.deadline_s = deadline_s
        self.name = "nvml"
        self._call(self._nvml.nvmlInit)

    def _call(self, function: Callable[[], Any]) -> Any:
        """Run an NVML call on a helper thread so a hung driver cannot hold the sampler."""
        box: Dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = function()
            except Exception as exc:  # NVMLError and friends: reported below
                box["error"] = exc
        worker = threading.Thread(target=run, name="nvml-call", daemon=True)
        worker.start()
        worker.join(self.deadline_s)
        if worker.is_alive():
            raise GpuMemoryUnavailable(f"NVML did not answer within {self.deadline_s:g} s")
        if "error" in box:
            raise GpuMemoryUnavailable(f"NVML: {box['error']}")
        return box.get("value")

    def processes(self) -> Tuple[GpuProcess, ...]:
        """Compute processes of every device."""
        nvml = self._nvml

        def query() -> List[GpuProcess]:
            found = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    used = proc.usedGpuMemory or 0
                    try:
                        name = nvml.nvmlSystemGetProcessName(proc.pid)
                    except Exception:
                        name = ""
                    if isinstance(name, bytes):
                        name = name.decode(errors="replace")
                    found.append(GpuProcess(int(proc.pid), str(name), int(used)))
            return found
        return tuple(self._call(query))


def open_gpu_reader(*, nvidia_smi_command: str = DEFAULT_NVIDIA_SMI_COMMAND,
                    deadline_s: float = 3.0) -> Tuple[Optional[Any], str]:
    """
    (reader, why) for per-process GPU memory: nvidia-smi when it runs, else NVML, else None.

    nvidia-smi comes first because it is what serves a Jetson Thor (NvMap is absent there)
    as well as a dGPU box.
    """
    smi = NvidiaSmiGpu(command=nvidia_smi_command, deadline_s=deadline_s)
    reasons = []
    if smi.available():
        return smi, f"{nvidia_smi_command} --query-compute-apps"
    reasons.append(f"{smi.argv[0]} not found")
    try:
        return NvmlGpu(deadline_s=deadline_s), "NVML"
    except GpuMemoryUnavailable as exc:
        reasons.append(str(exc))
    return None, "; ".join(reasons)


@dataclass(frozen=True)
class DropOutcome:
    """Result of one page-cache drop."""

    dropped: bool
    message: str
    duration_s: float = 0.0
    privileged: bool = True  # False: this process may not drop caches (said once)


class CacheDropper:
    """Writes a level to drop_caches after a sync (1 page cache, 3 also slab and shrinkers)."""

    def __init__(self, *, path: str = DEFAULT_DROP_CACHES_PATH) -> None:
        self.path = path
        self.privileged: Optional[bool] = None  # unknown until the first try
        self.calls = 0
        self.refusal = ""

    def drop(self, level: int = 3) -> DropOutcome:
        """Drop the caches once at level (1, 2 or 3); a refusal is remembered, not tried again."""
        if self.privileged is False:
            return DropOutcome(False, self.refusal, privileged=False)
        started = time.monotonic()
        self.calls += 1
        try:
            os.sync()
            with open(self.path, "w", encoding="ascii") as handle:
                handle.write(f"{int(level)}\n")
        except OSError as exc:
            denied = isinstance(exc, PermissionError) or exc.errno in (
                errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOENT)
            if denied:
                self.privileged = False
                self.refusal = (f"cannot drop the page cache: writing {self.path} failed "
                                f"({exc.strerror or exc}); run with that privilege (root, or "
                                "the file writable) to let the policy drop caches")
                _LOG.warning("%s", self.refusal)
                return DropOutcome(False, self.refusal, time.monotonic() - started, False)
            return DropOutcome(False, f"drop_caches failed: {exc}", time.monotonic() - started)
        self.privileged = True
        return DropOutcome(True, f"caches dropped: wrote {int(level)} to {self.path}",
                           time.monotonic() - started)


class MemorySourceReader:
    """Reads host meminfo and GPU processes beside a container sample; absent sources say why."""

    def __init__(self, *, meminfo_path: str = DEFAULT_MEMINFO_PATH,
                 nvidia_smi_command: str = DEFAULT_NVIDIA_SMI_COMMAND,
                 gpu_deadline_s: float = 3.0, gpu: Optional[Any] = None,
                 ps: Optional[Callable[[], Sequence[Dict[str, Any]]]] = None,
                 memory_scale: float = 1.0) -> None:
        self.meminfo_path = meminfo_path
        self.memory_scale = memory_scale  # < 1 on a simulated machine only (simulation.*)
        self._ps = ps
        if gpu is None:
            gpu, self.gpu_origin = open_gpu_reader(nvidia_smi_command=nvidia_smi_command,
                                                   deadline_s=gpu_deadline_s)
        else:
            self.gpu_origin = getattr(gpu, "name", "given")
        self.gpu = gpu

    def meminfo(self) -> HostMeminfo:
        """Read the host's meminfo now."""
        return read_host_meminfo(self.meminfo_path)

    def gpu_processes(self) -> Tuple[GpuProcess, ...]:
        """Per-process GPU memory now; GpuMemoryUnavailable when the machine has none."""
        if self.gpu is None:
            raise GpuMemoryUnavailable(self.gpu_origin)
        return self.gpu.processes()

    def ollama_ps(self) -> OllamaPsMemory:
        """Sizes /api/ps reports now."""
        if self._ps is None:
            raise MemorySourceError("no Ollama client to ask /api/ps")
        return ollama_ps_memory(self._ps(), memory_scale=self.memory_scale)

    def snapshot(self, container: Optional[ContainerSample], *,
                 ros_live_bytes: int = 0, with_gpu: bool = True,
                 with_ps: bool = True) -> SourceSnapshot:
        """Every source now; a source that fails is left out and its error recorded."""
        errors: Dict[str, str] = {}
        cgroup = cgroup_of(container)
        if container is not None and cgroup is None:
            errors["cgroup"] = "the container backend does not split anonymous and file pages"
        meminfo = gpu = ps = None
        try:
            meminfo = self.meminfo()
        except MemorySourceError as exc:
            errors["meminfo"] = str(exc)
        if with_gpu:
            try:
                gpu = self.gpu_processes()
            except GpuMemoryUnavailable as exc:
                errors["gpu"] = str(exc)
        if with_ps and self._ps is not None:
            try:
                ps = self.ollama_ps()
            except Exception as exc:  # the Ollama client's errors: the source is left out
                errors["ollama_ps"] = str(exc)
        return SourceSnapshot(stamp_s=time.time(), cgroup=cgroup, meminfo=meminfo,
                              gpu_processes=gpu, ollama_ps=ps, ros_live_bytes=ros_live_bytes,
                              errors=errors)


def cgroup_of(sample: Optional[ContainerSample]) -> Optional[CgroupMemory]:
    """Return the cgroup split of a container sample, None when the backend gave none."""
    if sample is None or sample.anon_bytes < 0:
        return None
    return CgroupMemory(usage_bytes=sample.usage_bytes, anon_bytes=sample.anon_bytes,
                        file_bytes=max(0, sample.file_bytes),
                        inactive_file_bytes=max(0, sample.usage_bytes - sample.working_set_bytes),
                        limit_bytes=sample.limit_bytes, version=sample.cgroup_version,
                        mapped_file_bytes=max(0, sample.mapped_file_bytes))
