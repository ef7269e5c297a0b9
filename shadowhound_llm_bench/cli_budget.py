"""
The CLI's memory budget options, the ROS reserve they choose, and the check before a run.

Also the simulation option group: what only a simulated machine sets (never a robot).
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from typing import Any, Optional

from .core.decider.budget_check import PlannedFit, nothing_fits, nothing_fits_message
from .core.memory.ros_reserve import RosReserveSettings
from .core.units import GIB
from .engine.cli_guard import CliRosReserve
from .engine.memory_guard_api import RunPlan


def _scale(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of GiB: {text!r}") from None
    if not 0 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be between 0 and 4096 GiB, got {text}")
    return value


def add_budget_options(run: argparse.ArgumentParser) -> None:
    """Options that set the memory held back from the models (the node's reserve.* / policy.*)."""
    group = run.add_argument_group(
        "memory budget", "budget = host available + what Ollama holds - unused ROS reserve - "
        "safety buffer, capped by the container's memory limit - safety buffer")
    reserve = group.add_mutually_exclusive_group()
    reserve.add_argument("--ros-reserve-gib", type=_gib, default=None, metavar="GIB",
                         help="fixed memory held back for ROS 2 / Nav2 (node: reserve.fixed_gib)")
    reserve.add_argument("--ros-reserve-floor-gib", type=_gib, default=None, metavar="GIB",
                         help="measure ROS 2 / Nav2 processes live and never hold back less "
                         "than this (node: reserve.floor_gib, 15 there). Without either "
                         "option: what is measured ×1.2 + 1 GiB margin")
    group.add_argument("--safety-buffer-gib", type=_gib, default=None, metavar="GIB",
                       help="memory always kept free for the system besides the ROS reserve "
                       "(node: policy.safety_buffer_gib; default 2 GiB, × --memory-scale on a "
                       "simulated machine)")


def add_simulation_options(run: argparse.ArgumentParser) -> None:
    """Options of a simulated machine only (the node's simulation.* group); a robot has none."""
    group = run.add_argument_group(
        "simulation", "a simulated machine standing in for the robot (the simulator's "
        "scenarios); never set on a robot")
    group.add_argument("--memory-scale", type=_scale, default=1.0, metavar="S",
                       help="share of the bytes Ollama reports that the simulated machine "
                       "holds, applied to model footprints and the preset's byte sizes: the "
                       "scenario's memory_scale (small: 1/8, thor: 1/64); 1 on a robot (node: "
                       "simulation.memory_scale)")


def ros_reserve_from(args: argparse.Namespace) -> CliRosReserve:
    """Return the reserve the options choose: fixed, live above a floor, or live above nothing."""
    if args.ros_reserve_gib is not None:
        return CliRosReserve(fixed_bytes=int(args.ros_reserve_gib * GIB))
    if args.ros_reserve_floor_gib is not None:
        return CliRosReserve(floor_bytes=int(args.ros_reserve_floor_gib * GIB), floor_given=True)
    return CliRosReserve()


def budget_overrides(args: argparse.Namespace) -> dict:
    """Return the policy settings fields the budget options set."""
    if args.safety_buffer_gib is None:
        return {}
    return {"safety_buffer_bytes": int(args.safety_buffer_gib * GIB)}


def reserve_note(args: argparse.Namespace, guard: Any) -> str:
    """How the ROS reserve was chosen, with the numbers (empty when unguarded)."""
    if guard is None:
        return ""
    headroom = getattr(guard, "ros_headroom", None)
    latest = headroom.latest() if headroom is not None else None
    return ros_reserve_from(args).describe(latest, RosReserveSettings().margin_bytes)


def check_budget(plan: RunPlan, guard: Any) -> Optional[str]:
    """Return the message that stops a run whose budget holds none of its models, else None."""
    fits = [PlannedFit(p.model, p.predicted_footprint_bytes, p.skip_reason) for p in plan.models]
    found = nothing_fits(fits, plan.model_budget_bytes)
    if found is None:
        return None
    reading = guard.monitor.latest() or guard.monitor.sample_now()
    fixes = ("--safety-buffer-gib (now "
             f"{guard.settings.safety_buffer_bytes / GIB:.2f}), --ros-reserve-gib, a larger "
             "container memory limit (docker update --memory), or smaller models; for a "
             "simulator also --memory-scale (its scenario's memory_scale)")
    return nothing_fits_message(found[0], found[1], reading, guard.settings.safety_buffer_bytes,
                                fixes)
