"""summary.md's machine, warnings and energy sections; missing values say "not measured"."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from ..core.runs.inert_text import markdown_cell
from ..core.runs.run_records import RunSummary
from ..core.platform.slowdown_attribution import model_slowdown_note
from ..core.units import to_gib

NOT_MEASURED = "not measured"
MACHINE_LINE_CHARS = 600  # the bandwidth line names its source in full


def _v(value: Any, fmt: str = "{}") -> str:
    if value is None or value == "":
        return NOT_MEASURED
    return fmt.format(value)


def _yes_no(value: Optional[bool]) -> str:
    return NOT_MEASURED if value is None else ("yes" if value else "NO")


def machine_lines(machine: Mapping[str, Any]) -> List[str]:
    """Return the machine record as bullet lines (also the dry-run plan's)."""
    if not machine:
        return ["- Machine: " + NOT_MEASURED]
    m = machine
    bandwidth = m.get("memory_bandwidth_bytes_per_s")
    simulated = (f" — SIMULATED: read from the simulator's platform files under "
                 f"{m['simulated_root']}, not measured on this machine"
                 if m.get("simulated_root") else "")
    lines = [
        f"- Module: {_v(m.get('module_model'))}"
        + (f" ({m['module_sku']})" if m.get("module_sku") else "")
        + (f"; L4T {m['l4t_release']}" if m.get("l4t_release") else "")
        + (f" (JetPack {m['jetpack_release']})" if m.get("jetpack_release") else "")
        + simulated,
        f"- Power mode: {_v(m.get('power_mode'))}"
        + (f" (id {m['power_mode_id']})" if m.get("power_mode_id") is not None else "")
        + (f", at the end: {m['power_mode_at_end']}"
           if m.get("power_mode_at_end") and m.get("power_mode_at_end") != m.get("power_mode")
           else "")
        + f"; clocks locked: {_yes_no(m.get('clocks_locked'))}",
        f"- Kernel {_v(m.get('kernel'))}, {_v(m.get('cpu_count'))} CPUs "
        f"({_v(m.get('cpu_model'))}), GPUs: {_v(m.get('gpu_count'))}"
        + (f" ({', '.join(m.get('gpu_names') or [])})" if m.get("gpu_names") else "")
        + ", memory "
        + (f"{to_gib(m['total_memory_bytes']):.1f} GiB" if m.get("total_memory_bytes")
           else NOT_MEASURED),
        f"- Ollama {_v(m.get('ollama_version'))}; container image "
        f"{_v(m.get('container_image'))} {m.get('container_digest') or ''}".rstrip(),
        "- Memory bandwidth (roofline): "
        + (f"{bandwidth / 1e9:.1f} GB/s — {m.get('memory_bandwidth_source')}" if bandwidth
           else NOT_MEASURED),
        f"- Power / temperature source: {m.get('sensor_source') or 'none'}",
    ]
    return lines


def _num(value: Any, digits: int) -> str:
    return NOT_MEASURED if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def energy_rows(models: Sequence[Any]) -> List[List[str]]:
    rows = []
    for m in models:
        e = m.energy
        if not e:
            rows.append([m.model] + [NOT_MEASURED] * 8)
            continue
        phases = e.get("phases") or {}

        def phase_j(name: str) -> str:
            p = phases.get(name)
            return NOT_MEASURED if not p else f"{p['energy_j']:.1f}"
        decode = phases.get("decode") or {}
        rows.append([
            m.model, _num(e.get("j_per_token"), 3), _num(e.get("decode_j_per_token"), 3),
            _num(decode.get("mean_w"), 1), _num(e.get("peak_w"), 1),
            " / ".join(phase_j(p) for p in ("load", "prefill", "decode", "idle")),
            _num(e.get("peak_temp_c"), 1), _num(e.get("throttled_s"), 1),
            model_slowdown_note(e) or "–",
        ])
    return rows


def platform_sections(summary: RunSummary,
                      table: Any) -> List[str]:
    """Lines of the Machine and Energy sections; table renders a Markdown table."""
    # Machine strings come from files, tools and process names: one line, no HTML, each.
    lines = ["", "## Machine", ""] + ["- " + markdown_cell(line[2:], MACHINE_LINE_CHARS)
                                      for line in machine_lines(summary.machine)]
    platform = summary.platform or {}
    warnings = platform.get("warnings") or []
    if warnings:
        lines += ["", "**Warnings:**"] + [f"- {markdown_cell(w, MACHINE_LINE_CHARS)}"
                                          for w in warnings]
    lines += ["", "## Energy and temperature", ""]
    run = platform.get("run")
    if not run or run.get("energy_j") is None:
        lines.append(f"Power {NOT_MEASURED} (no jtop service and no power sensor under the "
                     "sysfs root)."
                     + (f" Peak temperature {run['peak_temp_c']} degC." if run
                        and run.get("peak_temp_c") is not None else ""))
    else:
        lines.append(f"Whole run: {run['energy_j']:.1f} J over {run['duration_s']:.1f} s, mean "
                     f"{run['mean_w']:.1f} W, peak {_num(run.get('peak_w'), 1)} W, peak "
                     f"{_num(run.get('peak_temp_c'), 1)} degC, throttled "
                     f"{run['throttled_s']:.1f} s ({run['samples']} samples, source "
                     f"{platform.get('sensor_source')}).")
        lines.append("")
        lines += table(["model", "J/token", "decode J/token", "decode W", "peak W",
                        "energy J load / prefill / decode / idle", "peak degC",
                        "throttled s", "speed measured"], energy_rows(summary.models))
        lines += ["", "J/token = energy of prefill + decode over the measured tests / tokens "
                  "generated; throttled = GPU clock below its maximum while hot."]
        if any(m.concurrent_with for m in summary.models):
            lines.append("Models tested side by side drew the machine's power together: each "
                         "one's energy counts the whole machine while it ran.")
    slowdown = platform.get("slowdown")
    if slowdown:
        lines += ["", "Slowdown attribution: "
                  + markdown_cell(slowdown.get("message"), MACHINE_LINE_CHARS)]
    return lines
