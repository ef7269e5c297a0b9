"""Publish /diagnostics: memory pressure, top ROS consumers and the container's state."""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from ..core.platform.diagnostic_summary import (StatusSummary, container_status, pressure_status,
                                                ros_consumers_status)
from ..core.memory.memory_reading import MemoryReading

TopConsumers = Callable[[], Tuple[Optional[int], Sequence[Tuple[str, int]]]]


def status_msg(summary: StatusSummary, *, hardware_id: str) -> DiagnosticStatus:
    """Build a DiagnosticStatus from its pure summary."""
    return DiagnosticStatus(level=bytes([int(summary.level)]), name=summary.name,
                            message=summary.message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in summary.values])


class MemoryDiagnostics:
    """Timer that publishes three statuses built from the latest readings (no I/O here)."""

    def __init__(self, node: Node, *, latest: Callable[[], Optional[MemoryReading]],
                 top_consumers: TopConsumers, benchmark_state: Callable[[], str],
                 container_name: str, thresholds: Callable[[], Tuple[float, float]],
                 period_s: float, own_timer: bool = True,
                 extra_statuses: Optional[Callable[[], List[StatusSummary]]] = None,
                 backend_info: Optional[Callable[[], str]] = None,
                 waiting_fix: Optional[Callable[[], str]] = None) -> None:
        self._node = node
        self._backend_info = backend_info
        self._waiting_fix = waiting_fix
        self._latest = latest
        self._top = top_consumers
        self._benchmark_state = benchmark_state
        self._container_name = container_name
        self._thresholds = thresholds
        self._period_s = period_s
        self._extra = extra_statuses  # e.g. the platform's power mode, clocks, throttling
        self._group = MutuallyExclusiveCallbackGroup()
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady timer, as the memory topic's: diagnostics go on while a simulation is paused.
        # Without own_timer the caller calls publish() (one timer for both saves CPU).
        self._timer = node.create_timer(period_s, self.publish, callback_group=self._group,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME)) \
            if own_timer else None

    def statuses(self) -> List[StatusSummary]:
        """Build the current summaries (also used by tests without ROS)."""
        reading = self._latest()
        warn, error = self._thresholds()
        live_bytes, top = self._top()
        return [
            pressure_status(reading, warn_percent=warn, error_percent=error, now_s=time.time(),
                            stale_after_s=max(5.0, 5 * self._period_s)),
            ros_consumers_status(top, live_bytes=live_bytes),
            container_status(reading, container_name=self._container_name,
                             benchmark_state=self._benchmark_state(),
                             backend=self._backend_info() if self._backend_info else "",
                             waiting_fix=self._waiting_fix() if self._waiting_fix else ""),
        ] + (self._extra() if self._extra is not None else [])

    def destroy(self) -> None:
        """Stop the timer and remove the publisher (lifecycle deactivate, shutdown)."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._publisher)

    def publish(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status = [status_msg(s, hardware_id=self._container_name)
                        for s in self.statuses()]
        self._publisher.publish(array)
