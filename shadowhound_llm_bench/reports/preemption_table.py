"""summary.md's record of each preemption: when the robot took its memory back, and how fast."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ..core.runs.run_records import ModelResult
from ..core.units import to_gib


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) else "-"


def preemption_rows(models: Sequence[ModelResult]) -> List[List[str]]:
    """Return one row per preemption of any model, oldest first."""
    episodes: Dict[float, List[str]] = {}
    for model in models:
        memory = model.memory or {}
        for episode in memory.get("preemptions") or []:
            stamp = float(episode.get("breach_stamp_s") or 0.0)
            episodes[stamp] = [
                ", ".join(episode.get("models") or [model.model]),
                str(episode.get("during", "")),
                f"{float(episode.get('pressure_percent') or 0):.0f} %",
                f"{to_gib(int(episode.get('ros_headroom_bytes') or 0)):.3f}",
                _seconds(episode.get("cut_after_s")),
                _seconds(episode.get("unload_sent_after_s")),
                _seconds(episode.get("released_after_s")),
                "yes" if episode.get("restarted") else "no",
                f"{to_gib(int(episode.get('min_ros_headroom_bytes') or 0)):.3f}",
                _seconds(episode.get("below_reserve_s")),
                str(episode.get("outcome", "")),
            ]
    return [episodes[stamp] for stamp in sorted(episodes)]


def preemption_lines(models: Sequence[ModelResult]) -> List[str]:
    """Return the Preemptions section of summary.md (empty when none happened)."""
    rows = preemption_rows(models)
    if not rows:
        return []
    header = ["models", "during", "pressure", "ROS headroom GiB", "cut s", "unload sent s",
              "memory back s", "restart", "min ROS headroom GiB", "below reserve s", "outcome"]
    lines = ["", "## Preemptions (the robot took its memory back)", "",
             "Seconds count from the memory sample that showed the breach.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
