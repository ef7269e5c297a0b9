"""
The simulation parameter group: a simulated machine standing in for the robot, never a robot's.

A robot leaves every `simulation.*` parameter at its default: the node then reads the machine's
own /proc/meminfo and takes Ollama's sizes as they are. The simulator's scenarios (the demo,
the tests, the benchmarks) run a machine whose total memory is configured and whose Ollama
holds only `memory_scale` of the bytes it reports (1/8 for `small`, 1/64 for `thor`).

The names these parameters had before (`policy.memory_scale`, `host.simulated_total_gib`,
`host.system_reserve_gib`) are still accepted for one release, with a warning naming the new
name (robots keep params files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from .param_spec import ParamSpec, spec
from ..units import GIB

GROUP = "simulation"
GROUP_NOTE = (
    "For a simulated machine only (the simulator's scenarios, the demo, tests and benchmarks); "
    "a robot leaves these at their defaults and is never scaled.")

SIMULATION_SPECS: Tuple[ParamSpec, ...] = (
    spec("simulation.memory_scale", 1.0,
         "Share of the bytes Ollama reports that the simulated machine really holds, applied "
         "to Ollama's sizes and the preset's byte sizes: 1/8 for the small scenario, 1/64 for "
         "thor; 1 (no scaling) on a robot.", minimum=0.0001, maximum=1.0),
    spec("simulation.total_gib", 0.0,
         "0 reads the machine's own /proc/meminfo (a robot); otherwise the total memory of a "
         "simulated machine, GiB.", minimum=0.0, maximum=4096.0, read_only=True),
    spec("simulation.system_reserve_gib", 10.0,
         "Memory the operating system needs on a simulated machine (with "
         "simulation.total_gib), GiB.", minimum=0.0, maximum=4096.0, read_only=True),
)

# Former name -> name now; accepted for one release with a warning.
RENAMED: Dict[str, str] = {
    "policy.memory_scale": "simulation.memory_scale",
    "host.simulated_total_gib": "simulation.total_gib",
    "host.system_reserve_gib": "simulation.system_reserve_gib",
}


def renamed_note(old: str) -> str:
    """Say that a parameter was renamed, with the name to use."""
    return (f"parameter {old!r} is deprecated and will be removed in the next release; use "
            f"{RENAMED[old]!r} (a simulation parameter, never set on a robot)")


def with_current_names(values: Mapping[str, Any]) -> Tuple[Dict[str, Any], List[str], List[str]]:
    """
    Move values given under a former name to the name now.

    Return (values, notes, errors): a note per former name used, an error where both the
    former and the new name are given.
    """
    current = dict(values)
    notes: List[str] = []
    errors: List[str] = []
    for old, new in RENAMED.items():
        if old not in current:
            continue
        value = current.pop(old)
        if new in current:
            errors.append(f"give {new!r} only: {old!r} is its former name")
            continue
        current[new] = value
        notes.append(renamed_note(old))
    return current, notes, errors


@dataclass(frozen=True)
class SimulatedMachine:
    """The simulation.* values: 1 and 0 on a robot (its own readings, Ollama's sizes as is)."""

    memory_scale: float = 1.0
    total_bytes: int = 0  # 0: the machine's own /proc/meminfo
    system_reserve_bytes: int = 10 * GIB

    @property
    def simulated_host(self) -> bool:
        """Tell whether host memory is derived from a configured total (not read)."""
        return self.total_bytes > 0


def simulated_machine_from(values: Mapping[str, Any]) -> SimulatedMachine:
    """Build the simulated machine from node values (current names)."""
    return SimulatedMachine(
        memory_scale=float(values["simulation.memory_scale"]),
        total_bytes=int(round(float(values["simulation.total_gib"]) * GIB)),
        system_reserve_bytes=int(round(float(values["simulation.system_reserve_gib"]) * GIB)))
