"""
Read the machine record: module, L4T release, power mode, clocks, CPUs, GPUs, memory.

Files under a configurable root (default "/"): `/proc/device-tree/model`,
`/proc/device-tree/nvidia,boardids` and `compatible` (the P-number), `/etc/nv_tegra_release`
(jetson-stats, jtop/core/jetson_variables.py), `/proc/cpuinfo`,
`/proc/meminfo`. Tools: `nvpmodel -q` (`/usr/sbin/nvpmodel`) and `jetson_clocks --show`
(`/usr/bin/jetson_clocks`, jtop/core/jetson_clocks.py), looked up under the root first (the
simulator installs fakes there) and on PATH only for the real root. Every tool call has a
deadline. Off a Jetson the GPUs come from NVML (`nvidia-ml-py`, optional).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from ..core.platform.platform_record import (
    BandwidthEntry, MachineRecord, bandwidth_for, jetpack_for, parse_device_tree_model,
    parse_jetson_clocks_show, parse_module_sku, parse_nv_tegra_release, parse_nvpmodel_query,
    power_mode_is_max,
)
from ..core.memory.memory_sources import MemorySourceError, parse_meminfo
from .machine_identity import local_machine_record
from .machine_paths import find_tool, under_root

TOOL_DEADLINE_S = 5.0
# Processes on the GPU that are the benchmark's own server.
OWN_GPU_PROCESSES = ("ollama",)


def run_tool(argv: Sequence[str], *, deadline_s: float = TOOL_DEADLINE_S) -> Tuple[str, str]:
    """Return (stdout, error); error is "" on success. Never raises."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=deadline_s,
                              check=False)
    except subprocess.TimeoutExpired:
        return "", f"{argv[0]} took longer than {deadline_s:g} s"
    except OSError as exc:
        return "", f"{argv[0]}: {exc}"
    if done.returncode != 0:
        return done.stdout, (f"{os.path.basename(argv[0])} exited with {done.returncode}: "
                             f"{done.stderr.strip()[:200]}")
    return done.stdout, ""


def read_power_mode(root: str) -> Tuple[str, Optional[int], str]:
    """Return (mode name, id, note) from `nvpmodel -q`."""
    tool = find_tool(root, "nvpmodel")
    if tool is None:
        return "", None, "nvpmodel not found"
    out, error = run_tool([tool, "-q"])
    name, mode_id = parse_nvpmodel_query(out)
    if not name:
        return "", None, error or "nvpmodel -q printed no power mode"
    return name, mode_id, ""


def _read_bytes(path: str) -> Optional[bytes]:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _cpu_model(root: str) -> str:
    raw = _read_bytes(under_root(root, "/proc/cpuinfo")) or b""
    for line in raw.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor()


def _mem_total_bytes(root: str) -> Optional[int]:
    raw = _read_bytes(under_root(root, "/proc/meminfo")) or b""
    try:
        return parse_meminfo(raw.decode("utf-8", "replace")).get("MemTotal")
    except MemorySourceError:
        return None


def nvml_gpus() -> Tuple[Optional[List[str]], List[str], str]:
    """Return (GPU names, other processes on them, note) through NVML; names None without it."""
    try:
        import pynvml  # type: ignore[import-not-found]  # from nvidia-ml-py
    except ImportError:
        return None, [], "nvidia-ml-py not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver on this machine
        return None, [], f"NVML unavailable: {exc}"
    names: List[str] = []
    others: List[str] = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            names.append(name.decode() if isinstance(name, bytes) else str(name))
            try:
                procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except Exception:
                procs = []
            for proc in procs:
                label = _process_name(int(proc.pid))
                if not any(own in label.lower() for own in OWN_GPU_PROCESSES):
                    others.append(f"{label} (pid {proc.pid})")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return names, others, ""


def _process_name(pid: int) -> str:
    raw = _read_bytes(f"/proc/{pid}/comm")
    return raw.decode("utf-8", "replace").strip() if raw else "?"


def probe_machine(*, root: str = "/", sensors: Any = None,
                  bandwidth_table: Sequence[BandwidthEntry] = (),
                  bandwidth_override_bytes_per_s: Optional[float] = None,
                  gpu_busy_percent: float = 20.0, read_clocks: bool = True) -> MachineRecord:
    """Read what this machine is; fields that cannot be read stay empty with a note why."""
    identity = local_machine_record(Path(under_root(root, "/etc/machine-id")))
    record = MachineRecord(machine_id=str(identity.get("machine_id") or ""),
                           hostname=socket.gethostname(), kernel=platform.release(),
                           architecture=platform.machine(), cpu_count=os.cpu_count())
    if os.path.abspath(root) != "/":
        # A simulated machine: its kernel and CPU are the fake tree's, not this host's.
        record.simulated_root = os.path.abspath(root)
        kernel = _read_bytes(under_root(root, "/proc/sys/kernel/osrelease"))
        record.kernel = kernel.decode().strip() if kernel else record.kernel
        online = _read_bytes(under_root(root, "/sys/devices/system/cpu/online"))
        record.cpu_count = _count_cpus(online.decode()) if online else record.cpu_count
    record.cpu_model = _cpu_model(root)
    record.total_memory_bytes = _mem_total_bytes(root)
    model = _read_bytes(under_root(root, "/proc/device-tree/model"))
    record.module_model = parse_device_tree_model(model) if model else ""
    record.module_sku = parse_module_sku(
        _read_bytes(under_root(root, "/proc/device-tree/nvidia,boardids")) or b"",
        _read_bytes(under_root(root, "/proc/device-tree/compatible")) or b"")
    release = _read_bytes(under_root(root, "/etc/nv_tegra_release"))
    if release:
        record.l4t_release = parse_nv_tegra_release(release.decode("utf-8", "replace"))
        record.jetpack_release = jetpack_for(record.l4t_release)
    record.is_jetson = bool(record.l4t_release) or "jetson" in record.module_model.lower()
    if record.is_jetson:
        name, mode_id, note = read_power_mode(root)
        record.power_mode, record.power_mode_id = name, mode_id
        record.power_mode_is_max = power_mode_is_max(name)
        if note:
            record.notes.append(f"power mode not read: {note}")
        if read_clocks:
            tool = find_tool(root, "jetson_clocks")
            if tool is None:
                record.notes.append("clocks not read: jetson_clocks not found")
            else:
                out, error = run_tool([tool, "--show"])
                record.clocks_locked = parse_jetson_clocks_show(out)
                if record.clocks_locked is None:
                    record.notes.append(f"clocks not read: {error or 'no clock lines'}")
        record.gpu_count = 1  # the integrated GPU
        record.gpu_names = [f"{record.module_model} integrated GPU"]
        load = sensors.gpu_load_percent() if sensors is not None else None
        record.gpu_load_percent = load
        if load is not None and load >= gpu_busy_percent:
            record.gpu_processes = [f"GPU {load:.0f} % busy before the run"]
        if os.path.abspath(root) == "/":
            # Thor's OpenRM driver answers NVML too: name the processes when it can.
            _names, others, _note = nvml_gpus()
            record.gpu_processes += others
    else:
        names, others, note = nvml_gpus()
        if names is None:
            record.notes.append(f"GPUs not read: {note}")
        else:
            record.gpu_count, record.gpu_names, record.gpu_processes = len(names), names, others
    if bandwidth_override_bytes_per_s:
        record.memory_bandwidth_bytes_per_s = float(bandwidth_override_bytes_per_s)
        record.memory_bandwidth_source = "parameter benchmark.memory_bandwidth_gbps"
    else:
        entry = bandwidth_for(record.module_model, record.total_memory_bytes, bandwidth_table)
        if entry is not None:
            record.memory_bandwidth_bytes_per_s = entry.bandwidth_bytes_per_s
            record.memory_bandwidth_source = f"{entry.name}: {entry.source}"
    record.sensor_source = getattr(sensors, "name", "none") if sensors is not None else "none"
    return record


def _count_cpus(online: str) -> Optional[int]:
    """Count CPUs of a kernel cpu list such as "0-13" or "0-3,6"."""
    total = 0
    for part in online.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            total += int(hi or lo) - int(lo) + 1
        except ValueError:
            return None
    return total or None
