"""Small /proc and cgroup file readers of the simulated machine's host process."""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from ..common.kernel_text import parse_memory_stat


def read_int(path: str) -> int:
    try:
        with open(path, encoding='ascii') as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 0


def read_stat(path: str) -> Dict[str, int]:
    try:
        with open(path, encoding='ascii') as handle:
            return parse_memory_stat(handle.read())
    except OSError:
        return {}


def rss_bytes(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/statm', encoding='ascii') as handle:
            return int(handle.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


def process_name(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/comm', encoding='utf-8') as handle:
            return handle.read().strip()
    except OSError:
        return 'unknown'


def set_oom_score_adj(pid: int, value: int) -> None:
    try:
        with open(f'/proc/{pid}/oom_score_adj', 'w', encoding='ascii') as handle:
            handle.write(str(value))
    except OSError:
        pass


def children(pid: int) -> List[int]:
    try:
        with open(f'/proc/{pid}/task/{pid}/children', encoding='ascii') as handle:
            direct = [int(p) for p in handle.read().split()]
    except (OSError, ValueError):
        return []
    result = list(direct)
    for child in direct:
        result += children(child)
    return result


def parent_pid(pid: int) -> int:
    """Return pid's parent (0 when gone)."""
    stat = proc_stat(pid)
    return int(stat[1]) if stat else 0


def start_time(pid: int) -> str:
    """Return pid's start time in clock ticks since boot ('' when gone): tells pid reuse apart."""
    stat = proc_stat(pid)
    return stat[19] if stat else ''


def proc_stat(pid: int) -> Optional[List[str]]:
    """Fields of /proc/pid/stat after the command name (state first), None when gone."""
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rindex(')') + 2:].split()


def write_atomically(path: str, text: str) -> None:
    """Replace path's content at once (readers see the old or the new text)."""
    temporary = f'{path}.{os.getpid()}.tmp'
    with open(temporary, 'w', encoding='ascii') as handle:
        handle.write(text)
    os.replace(temporary, path)
