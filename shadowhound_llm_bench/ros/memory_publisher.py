"""Publish the latest container memory reading at a fixed rate on its own callback group."""

from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy

from ..core.memory.memory_reading import MemoryReading
from .messages import container_memory_msg

LatestReading = Callable[[], Optional[MemoryReading]]

TOPIC = "~/container_memory"


def container_memory_qos() -> QoSProfile:
    """Reliable, keep last 10: rqt_plot and late subscribers both get every recent sample."""
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)


class ContainerMemoryPublisher:
    """Timer that turns monitor.latest() into ContainerMemory messages; never does I/O itself."""

    def __init__(self, node: Node, *, msg_type: type, latest: LatestReading,
                 container_name: str, rate_hz: float,
                 also_every: Optional[Tuple[float, Callable[[], None]]] = None) -> None:
        """
        Publish at rate_hz on a steady timer.

        also_every = (period_s, callback) runs another periodic publication (the diagnostics)
        from the same timer: one executor wake-up instead of two, which is most of the idle cost.
        """
        self._node = node
        self._latest = latest
        self._msg_type = msg_type
        self._container_name = container_name
        self.published = 0
        self._also = also_every
        self._also_due_s = 0.0
        self._half_period_s = 0.5 / rate_hz
        # Own group: the timer runs on another executor thread than the benchmark's goal.
        self._group = MutuallyExclusiveCallbackGroup()
        self._publisher = node.create_publisher(msg_type, TOPIC, container_memory_qos())
        # Steady timer: memory is watched at the same rate when a simulation pauses its clock
        # (use_sim_time); the stamps still come from the node clock.
        self._timer = node.create_timer(1.0 / rate_hz, self._tick, callback_group=self._group,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def topic_name(self) -> str:
        return self._publisher.topic_name

    def _tick(self) -> None:
        self._publish()
        if self._also is not None:
            now = time.monotonic()
            if now >= self._also_due_s:
                self._also_due_s = now + self._also[0] - self._half_period_s
                self._also[1]()

    def _publish(self) -> None:
        reading = self._latest()
        if reading is None:
            return
        # Stamped by the node clock, so sim time (use_sim_time) and /diagnostics agree.
        self._publisher.publish(container_memory_msg(
            self._msg_type, reading, container_name=self._container_name,
            stamp=self._node.get_clock().now().to_msg()))
        self.published += 1

    def destroy(self) -> None:
        """Stop the timer and remove the publisher (lifecycle deactivate, shutdown)."""
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._publisher)
