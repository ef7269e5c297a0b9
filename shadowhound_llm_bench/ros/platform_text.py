"""The machine, warnings and energy lines added to the action result's summary."""

from __future__ import annotations

from typing import List

from ..core.platform.platform_record import MachineRecord, machine_warnings
from ..core.runs.run_records import RunSummary
from ..reports.platform_markdown import machine_lines


def plan_machine_text(record: MachineRecord) -> str:
    """Return the machine record and its warnings for a dry-run plan."""
    lines = ["machine:"] + [line[2:] for line in machine_lines(record.to_dict())]
    lines += [f"WARNING: {w}" for w in machine_warnings(record)]
    return "\n".join(lines)


def result_platform_text(summary: RunSummary) -> str:
    """Return the machine, warnings, energy per model and slowdown attribution, one paragraph."""
    m = summary.machine
    lines: List[str] = [
        f"machine: {m.get('module_model') or m.get('cpu_model') or 'not measured'}, "
        f"L4T {m.get('l4t_release') or 'not measured'}, power mode "
        f"{m.get('power_mode') or 'not measured'}, clocks locked "
        f"{'not measured' if m.get('clocks_locked') is None else m.get('clocks_locked')}"
        + (f" (SIMULATED: the simulator's platform files under {m['simulated_root']})"
           if m.get("simulated_root") else "")]
    platform = summary.platform or {}
    lines += [f"WARNING: {w}" for w in platform.get("warnings") or []]
    energy_parts = []
    for model in summary.models:
        value = (model.energy or {}).get("j_per_token")
        energy_parts.append(f"{model.model} "
                            + ("not measured" if value is None else f"{value:.3f} J/token"))
    if energy_parts:
        lines.append("energy: " + "; ".join(energy_parts))
    slowdown = platform.get("slowdown")
    if slowdown:
        lines.append(f"slowdown: {slowdown.get('message')}")
    return "; ".join(lines)  # one paragraph, as the rest of the result's summary
