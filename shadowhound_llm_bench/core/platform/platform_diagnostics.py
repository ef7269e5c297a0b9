"""What /diagnostics says about the machine: power mode, clocks, GPU use, power, temperature."""

from __future__ import annotations

from typing import Optional

from .diagnostic_summary import Level, StatusSummary
from .energy_accounting import PowerSample
from .platform_record import MachineRecord, machine_warnings

NAME = "llm_bench: platform"


def _text(value: Optional[float], fmt: str) -> str:
    return "not measured" if value is None else fmt.format(value)


def platform_status(machine: Optional[MachineRecord], sample: Optional[PowerSample], *,
                    source: str, energy_j: float, throttled_s: float,
                    now_s: float, stale_after_s: float) -> StatusSummary:
    """WARN on a machine warning (power mode, clocks, GPU busy) or throttling, else OK."""
    warnings = machine_warnings(machine) if machine is not None else []
    values = [("source", source)]
    if machine is not None:
        values += [("module", machine.module_model or "not measured"),
                   ("l4t", machine.l4t_release or "not measured"),
                   ("simulated_from", machine.simulated_root or "no (this machine)"),
                   ("power_mode", machine.power_mode or "not measured"),
                   ("clocks_locked", "not measured" if machine.clocks_locked is None
                    else str(machine.clocks_locked).lower())]
    if sample is not None:
        values += [("power_w", _text(sample.power_w, "{:.1f}")),
                   ("temperature_c", _text(sample.temp_c, "{:.1f}")),
                   ("gpu_freq_mhz", _text(None if sample.gpu_freq_hz is None
                                          else sample.gpu_freq_hz / 1e6, "{:.0f}")),
                   ("throttled", "not measured" if sample.throttled is None
                    else str(sample.throttled).lower()),
                   ("energy_j", f"{energy_j:.1f}"), ("throttled_s", f"{throttled_s:.1f}")]
    values += [(f"warning_{i + 1}", w) for i, w in enumerate(warnings)]
    if sample is None and source == "none":
        message = "power and temperature not measured (no jtop service, no sysfs sensors)"
        return StatusSummary(NAME, Level.WARN if warnings else Level.OK,
                             "; ".join(warnings + [message]), values)
    if sample is None or now_s - sample.t_s > stale_after_s:
        return StatusSummary(NAME, Level.STALE, "no recent platform sample", values)
    if sample.throttled:
        warnings.append(f"throttling: GPU clock below its maximum at "
                        f"{_text(sample.temp_c, '{:.1f}')} degC")
    if warnings:
        return StatusSummary(NAME, Level.WARN, "; ".join(warnings), values)
    return StatusSummary(NAME, Level.OK,
                         f"{_text(sample.power_w, '{:.1f} W')}, "
                         f"{_text(sample.temp_c, '{:.1f} degC')}, "
                         f"power mode {machine.power_mode if machine else 'not measured'}",
                         values)
