"""memory.png: container working set over the run, budget and ROS reserve, decision marks."""

from __future__ import annotations

import io
from pathlib import Path

from ..core.runs.inert_text import plot_label
from ..core.runs.run_records import RunSummary, reading_memory_in_use, reading_working_set
from ..core.units import to_gib
from .atomic_write import write_atomic
from .platform_plot import draw_platform_panel

PLOT_NAME = "memory.png"
_MARKS = {"load": ("tab:green", "load"), "unload": ("tab:orange", "unload"),
          "unload_others": ("tab:orange", "unload"), "restart": ("tab:red", "restart"),
          "abort": ("black", "abort"), "skip": ("tab:gray", "skip")}


def render_memory_plot(summary: RunSummary) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with_platform = bool(summary.platform_samples)
    fig = Figure(figsize=(10, 7.5 if with_platform else 4.5), dpi=100)
    ax = fig.add_subplot(2, 1, 1) if with_platform else fig.add_subplot(1, 1, 1)
    readings = sorted(summary.readings, key=lambda r: float(r.get("stamp_s") or 0.0))
    sources = sorted({str(r.get("source")) for r in readings
                      if r.get("model_memory_bytes") is not None
                      and r.get("source") not in (None, "cgroup_working_set")})
    if readings:
        t0 = float(readings[0].get("stamp_s") or 0.0)
        times = [float(r.get("stamp_s") or 0.0) - t0 for r in readings]
        if sources:
            # Unified memory: the model is outside the container's cgroup; its memory is read
            # from the sources calibration chose, the working set is drawn for comparison.
            ax.plot(times, [to_gib(reading_memory_in_use(r)) for r in readings],
                    color="tab:blue", label="Ollama memory in use")
            ax.plot(times, [to_gib(reading_working_set(r)) for r in readings],
                    color="tab:gray", linewidth=0.8, label="container working set")
        else:
            ax.plot(times, [to_gib(reading_working_set(r)) for r in readings],
                    color="tab:blue", label="container working set")
        ax.step(times, [to_gib(int(r.get("model_budget_bytes") or 0)) for r in readings],
                where="post", color="tab:purple", linestyle="--", label="model budget")
        ax.step(times, [to_gib(int(r.get("ros_reserve_bytes") or 0)) for r in readings],
                where="post", color="tab:olive", linestyle=":", label="ROS reserve")
        seen = set()
        for d in summary.decisions:
            mark = _MARKS.get(str(d.get("action")))
            if not mark:
                continue
            color, label = mark
            x = float(d.get("stamp_s") or 0.0) - t0
            ax.axvline(x, color=color, alpha=0.6, linewidth=1,
                       label=None if label in seen else label)
            seen.add(label)
            if d.get("action") in ("load", "skip", "abort") and d.get("model"):
                # x in data units, y in axes units: the name sits at the top whatever the scale.
                ax.text(x, 0.98, f" {plot_label(d['model'])}", transform=ax.get_xaxis_transform(),
                        rotation=90, va="top", ha="right", fontsize="x-small", color=color)
        ax.set_xlabel("seconds since the first reading")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        fig.subplots_adjust(left=0.07, right=0.8)
    else:
        ax.text(0.5, 0.5, "no memory readings (run without memory management)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("GiB")
    ax.set_title(f"Ollama memory, run {plot_label(summary.run_id)}"
                 + (f" (read from {plot_label(', '.join(sources))})" if sources else ""))
    ax.grid(True, alpha=0.3)
    if with_platform:
        t0 = float(readings[0].get("stamp_s") or 0.0) if readings else None
        draw_platform_panel(fig.add_subplot(2, 1, 2, sharex=ax if readings else None),
                            summary, t0)
        fig.subplots_adjust(left=0.07, right=0.8, hspace=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_memory_plot(summary: RunSummary, path: Path) -> None:
    write_atomic(path, render_memory_plot(summary))
