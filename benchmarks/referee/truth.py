"""Ground truth read straight from the kernel and the simulated driver: cgroups, /proc, state."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

# Processes that hold a loaded model: the simulator's runner, Ollama's `ollama runner`
# (process name `ollama`, argv[1] `runner`) and llama.cpp's server of newer Ollama builds.
RUNNER_NAMES = ('ollama-runner', 'llama-server')
PAGE_BYTES = os.sysconf('SC_PAGE_SIZE')


@dataclass(frozen=True)
class GroupTruth:
    """One memory cgroup: the kernel's charge, its anonymous and its file pages."""

    usage_bytes: int
    anon_bytes: int
    file_bytes: int
    oom_kills: int = 0


@dataclass(frozen=True)
class ProcessTruth:
    """One process: pid, name and resident bytes from /proc."""

    pid: int
    name: str
    rss_bytes: int


@dataclass(frozen=True)
class DriverTruth:
    """The simulated GPU driver: live device memory per owner pid, its pool, its drops."""

    device_bytes: int = 0
    pool_bytes: int = 0
    drops: int = 0
    device_by_pid: Dict[int, int] = field(default_factory=dict)


def read_int(path: str) -> Optional[int]:
    """Return the integer a kernel file holds, None when it cannot be read."""
    try:
        with open(path, encoding='ascii') as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def read_keyed(path: str) -> Dict[str, int]:
    """Return `key value` lines (memory.stat, memory.oom_control) as a dict."""
    values: Dict[str, int] = {}
    try:
        with open(path, encoding='ascii') as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip('-').isdigit():
                    values[parts[0]] = int(parts[1])
    except OSError:
        pass
    return values


def read_group(path: str) -> Optional[GroupTruth]:
    """Read a cgroup v1 memory folder (hierarchical totals); None when it is gone."""
    usage = read_int(os.path.join(path, 'memory.usage_in_bytes'))
    if usage is None:
        return None
    stat = read_keyed(os.path.join(path, 'memory.stat'))
    kills = 0
    for root, _, files in os.walk(path):
        if 'memory.oom_control' in files:
            kills += read_keyed(os.path.join(root, 'memory.oom_control')).get('oom_kill', 0)
    return GroupTruth(
        usage_bytes=usage, anon_bytes=stat.get('total_rss', 0),
        file_bytes=stat.get('total_active_file', 0) + stat.get('total_inactive_file', 0),
        oom_kills=kills)


def child_groups(path: str) -> Dict[str, str]:
    """Return the child cgroups of a memory cgroup folder: name to path."""
    try:
        return {entry.name: entry.path for entry in os.scandir(path) if entry.is_dir()}
    except OSError:
        return {}


def group_pids(path: str) -> List[int]:
    """Return every process in a cgroup and its children."""
    pids: List[int] = []
    for root, _, files in os.walk(path):
        if 'cgroup.procs' in files:
            try:
                with open(os.path.join(root, 'cgroup.procs'), encoding='ascii') as handle:
                    pids += [int(line) for line in handle if line.strip()]
            except (OSError, ValueError):
                continue
    return pids


def read_process(pid: int) -> Optional[ProcessTruth]:
    """Read a process's name and resident bytes; None when it is gone or a zombie."""
    try:
        with open(f'/proc/{pid}/comm', encoding='utf-8', errors='replace') as handle:
            name = handle.read().strip()
        with open(f'/proc/{pid}/statm', encoding='ascii') as handle:
            rss_pages = int(handle.read().split()[1])
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            argv = handle.read().split(b'\0')
    except (OSError, ValueError, IndexError):
        return None
    if rss_pages == 0 and not argv[0]:
        return None  # a zombie: nothing held any more
    if name == 'ollama' and len(argv) > 1 and argv[1] == b'runner':
        name = 'ollama runner'
    return ProcessTruth(pid=pid, name=name, rss_bytes=rss_pages * PAGE_BYTES)


def descendants(pid: int) -> List[int]:
    """Return every descendant of a process (children of all its threads, recursively)."""
    found: List[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f'/proc/{parent}/task')
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f'/proc/{parent}/task/{task}/children', encoding='ascii') as handle:
                    children = [int(p) for p in handle.read().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def is_runner(process: ProcessTruth) -> bool:
    """Return True for a process that holds a loaded model."""
    return process.name in RUNNER_NAMES or process.name == 'ollama runner'


def runners(pids: Iterable[int]) -> List[ProcessTruth]:
    """Return the model-holding processes among pids."""
    found = []
    for pid in sorted(set(pids)):
        process = read_process(pid)
        if process is not None and is_runner(process):
            found.append(process)
    return found


def read_driver(state_path: str) -> Optional[DriverTruth]:
    """Read the simulated driver's published state (its contexts and pool); None if absent."""
    try:
        with open(state_path, encoding='utf-8') as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    by_pid: Dict[int, int] = {}
    live = pooled = 0
    for context in state.get('contexts', []):
        held = _context_rss(int(context.get('pid', 0)))  # the pages, not the claim
        if context.get('pooled'):
            pooled += held
        else:
            live += held
            owner = int(context.get('owner_pid', 0))
            by_pid[owner] = by_pid.get(owner, 0) + held
    return DriverTruth(device_bytes=live, pool_bytes=pooled,
                       drops=int(state.get('drop_caches_count', 0)), device_by_pid=by_pid)


def _context_rss(pid: int) -> int:
    process = read_process(pid) if pid > 0 else None
    return process.rss_bytes if process else 0


def rss_sum(pids: Iterable[int]) -> Tuple[int, int]:
    """Return (resident bytes, live processes) over pids."""
    total = count = 0
    for pid in set(pids):
        process = read_process(pid)
        if process is not None:
            total += process.rss_bytes
            count += 1
    return total, count
