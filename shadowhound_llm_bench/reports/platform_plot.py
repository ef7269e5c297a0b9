"""The power and temperature panel under the memory plot, shaded where the GPU throttled."""

from __future__ import annotations

from typing import Any, Optional

from ..core.runs.run_records import RunSummary


def draw_platform_panel(ax: Any, summary: RunSummary, t0: Optional[float]) -> None:
    """Draw power (W, left axis) and peak temperature (degC, right axis) over the run."""
    samples = sorted(summary.platform_samples, key=lambda s: float(s.get("t_s") or 0.0))
    start = t0 if t0 is not None else float(samples[0].get("t_s") or 0.0)
    times = [float(s.get("t_s") or 0.0) - start for s in samples]
    power = [s.get("power_w") for s in samples]
    if any(p is not None for p in power):
        ax.plot(times, [float("nan") if p is None else p for p in power], color="tab:red",
                linewidth=1, label="power W")
    else:
        ax.text(0.5, 0.5, "power not measured", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_ylabel("W")
    ax.set_xlabel("seconds since the first reading")
    ax.grid(True, alpha=0.3)
    shaded = False
    start: Optional[float] = None
    for i, sample in enumerate(samples):  # one span per run of throttled samples
        if sample.get("throttled") and start is None:
            start = times[i]
        last = i + 1 == len(samples)
        if start is not None and (last or not samples[i + 1].get("throttled")):
            end = times[min(i + 1, len(samples) - 1)]
            ax.axvspan(start, end, color="tab:orange", alpha=0.25, linewidth=0,
                       label=None if shaded else "throttled")
            shaded, start = True, None
    handles, labels = ax.get_legend_handles_labels()
    temps = [s.get("temp_c") for s in samples]
    if any(t is not None for t in temps):
        twin = ax.twinx()
        twin.plot(times, [float("nan") if t is None else t for t in temps],
                  color="tab:brown", linewidth=1, linestyle="--", label="max temp degC")
        twin.set_ylabel("degC")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.set_title("Power and temperature")
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.1, 1.0),
                  fontsize="x-small")
