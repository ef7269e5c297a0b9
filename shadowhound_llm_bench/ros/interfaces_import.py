"""Import the generated interfaces, or stop with a one-line hint on how to build them."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import NoReturn, Tuple

BUILD_HINT = (
    "shadowhound_llm_bench_interfaces is not built or not sourced: run `make bootstrap` "
    "(or `colcon build --base-paths . interfaces` and `source install/setup.bash`, or "
    "`source scripts/env.sh`) first")


def exit_with_hint(error: BaseException) -> NoReturn:
    """Print the build hint (and the import error) on one line and exit with status 2."""
    print(f"error: {BUILD_HINT} ({error})", file=sys.stderr)
    raise SystemExit(2)


def import_interfaces() -> Tuple[type, type, type]:
    """Return the RunBenchmark action and the ContainerMemory and ModelResult messages."""
    try:
        from shadowhound_llm_bench_interfaces.action import RunBenchmark
        from shadowhound_llm_bench_interfaces.msg import ContainerMemory, ModelResult
    except ImportError as exc:
        exit_with_hint(exc)
    return RunBenchmark, ContainerMemory, ModelResult


def import_rclpy() -> ModuleType:
    """Return rclpy, or exit with a hint when ROS 2 is not installed or sourced."""
    try:
        import rclpy
    except ImportError as exc:
        print("error: rclpy cannot be imported: source your ROS 2 setup "
              "(e.g. /opt/ros/jazzy/setup.bash) or run `make bootstrap` and "
              f"`source scripts/env.sh` ({exc})", file=sys.stderr)
        raise SystemExit(2)
    return rclpy
