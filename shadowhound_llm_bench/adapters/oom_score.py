"""
The kernel's OOM score of processes: Ollama's runners first, ROS / Nav2 processes last.

Where model memory is not charged to the container's cgroup (GPU allocations on a unified-memory
Jetson), no container limit can hold a load back: when memory runs out the kernel's OOM killer
picks the process with the highest badness (resident memory + oom_score_adj x total / 1000).
Raising a process's oom_score_adj is allowed to its owner; lowering one needs CAP_SYS_RESOURCE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

import psutil

# Ollama's model runners: `ollama runner --model ...` (the simulator's are named ollama-runner).
RUNNER_MARKERS = ("runner",)
RUNNER_OOM_SCORE_ADJ = 1000  # the first the kernel kills
ROS_OOM_SCORE_ADJ = -900  # nearly never (-1000 would forbid it altogether)


@dataclass(frozen=True)
class OomAdjustment:
    """One attempt to set a process's oom_score_adj and how it went."""

    pid: int
    name: str
    wanted: int
    ok: bool
    error: str = ""


def read_oom_score_adj(pid: int) -> Optional[int]:
    """Return the process's oom_score_adj, None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"


def set_oom_score_adj(pid: int, value: int) -> OomAdjustment:
    """Set oom_score_adj; the result says why not when the kernel refused."""
    name = _name(pid)
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w", encoding="ascii") as handle:
            handle.write(str(int(value)))
    except PermissionError:
        why = ("lowering an OOM score needs CAP_SYS_RESOURCE (run the node as root with that "
               "capability)" if value < 0 else "the process belongs to another user")
        return OomAdjustment(pid, name, value, False, f"not permitted: {why}")
    except OSError as exc:
        return OomAdjustment(pid, name, value, False, f"{exc.strerror or exc}")
    return OomAdjustment(pid, name, value, True)


def runner_pids(pids: Iterable[int]) -> List[int]:
    """Return the pids among these whose command line or name marks an Ollama runner."""
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            text = " ".join([process.name()] + process.cmdline()[1:3])
        except psutil.Error:
            continue
        if any(marker in text for marker in RUNNER_MARKERS):
            found.append(pid)
    return found


def process_tree_pids(root_pid: int) -> List[int]:
    """Return the process and its descendants (a local process standing in for a container)."""
    try:
        root = psutil.Process(root_pid)
        return [root_pid] + [child.pid for child in root.children(recursive=True)]
    except psutil.Error:
        return []
