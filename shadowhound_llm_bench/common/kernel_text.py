"""
The one reader of the kernel's memory text formats: /proc/meminfo and a cgroup's memory.stat.

The product (core/memory/memory_sources.py) and the simulated machine (sim/) both read these
files; every reading of them goes through here so both see the same fields the same way.
"""

from __future__ import annotations

from typing import Dict


class KernelTextError(ValueError):
    """A meminfo line is not `Name: value [kB]`."""


def parse_meminfo(text: str) -> Dict[str, int]:
    """Fields of a Linux meminfo file in bytes ("kB" values are KiB; others are counts)."""
    fields: Dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            raise KernelTextError(f"meminfo line {number} is not 'Name: value [kB]': {line!r}")
        try:
            value = int(parts[0])
        except ValueError as exc:
            raise KernelTextError(f"meminfo line {number} has no number: {line!r}") from exc
        fields[key.strip()] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return fields


def parse_memory_stat(text: str) -> Dict[str, int]:
    """Parse a cgroup `memory.stat` file (lines "name value") into a dict; others are skipped."""
    stats: Dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats
