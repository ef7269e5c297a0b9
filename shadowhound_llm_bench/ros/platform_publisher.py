"""Publish ~/platform_status (power, temperature, clocks) and build its /diagnostics status."""

from __future__ import annotations

import math
import time
from typing import Any, List, Optional

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from ..core.platform.diagnostic_summary import StatusSummary
from ..core.platform.platform_diagnostics import platform_status
from ..core.platform.platform_record import machine_warnings
from ..engine.platform_monitor import PlatformMonitor, PlatformSettings
from .memory_publisher import container_memory_qos
from .messages import stamp_from_seconds

TOPIC = "~/platform_status"
_SOURCES = {"none": 0, "sysfs": 1, "jtop": 2, "tegrastats": 3}


def _nan(value: Optional[float], scale: float = 1.0) -> float:
    return math.nan if value is None else float(value) * scale


def platform_status_msg(msg_type: type, monitor: PlatformMonitor,
                        stamp: Optional[Any] = None) -> Any:
    """Build one PlatformStatus from the monitor's latest sample and machine record."""
    msg = msg_type()
    sample = monitor.latest()
    machine = monitor.current_machine()
    msg.header.stamp = stamp if stamp is not None else stamp_from_seconds(time.time())
    msg.sample_wall_time_s = float(sample.t_s) if sample else math.nan
    msg.module = machine.module_model if machine else ""
    msg.measured = sample is not None
    msg.source = _SOURCES.get(monitor.source, 0)
    msg.power_w = _nan(sample.power_w if sample else None)
    msg.temperature_c = _nan(sample.temp_c if sample else None)
    msg.gpu_freq_mhz = _nan(sample.gpu_freq_hz if sample else None, 1e-6)
    msg.gpu_freq_max_mhz = _nan(sample.gpu_freq_max_hz if sample else None, 1e-6)
    throttled = sample.throttled if sample else None
    msg.throttled = math.nan if throttled is None else float(throttled)
    energy_j, throttled_s = monitor.totals()
    has_power = sample is not None and sample.power_w is not None
    msg.energy_j = float(energy_j) if has_power else math.nan
    msg.throttled_s = float(throttled_s) if throttled is not None else math.nan
    mode = machine.power_mode if machine else monitor.power_mode
    msg.power_mode = mode
    msg.power_mode_id = -1 if machine is None or machine.power_mode_id is None \
        else int(machine.power_mode_id)
    msg.power_mode_is_max = -1 if not mode else int(mode.upper().startswith("MAXN"))
    msg.clocks_locked = -1 if machine is None or machine.clocks_locked is None \
        else int(machine.clocks_locked)
    return msg


class PlatformStatusPublisher:
    """Timer that publishes PlatformStatus; statuses() feeds the node's /diagnostics (no I/O)."""

    def __init__(self, node: Node, *, msg_type: type, monitor: PlatformMonitor,
                 rate_hz: float) -> None:
        self._node = node
        self._msg_type = msg_type
        self._monitor = monitor
        self.published = 0
        self._group = MutuallyExclusiveCallbackGroup()
        self._publisher = node.create_publisher(msg_type, TOPIC, container_memory_qos())
        self._timer = node.create_timer(1.0 / rate_hz, self._publish, callback_group=self._group)

    @property
    def topic_name(self) -> str:
        return self._publisher.topic_name

    def destroy(self) -> None:
        """Stop the timer and remove the publisher (lifecycle deactivate, shutdown)."""
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._publisher)

    def _publish(self) -> None:
        self._publisher.publish(platform_status_msg(
            self._msg_type, self._monitor, stamp=self._node.get_clock().now().to_msg()))
        self.published += 1

    def statuses(self) -> List[StatusSummary]:
        """Return the platform's /diagnostics status (power mode, clocks, GPU, throttling)."""
        monitor = self._monitor
        energy_j, throttled_s = monitor.totals()
        return [platform_status(monitor.current_machine(), monitor.latest(),
                                source=monitor.source,
                                energy_j=energy_j, throttled_s=throttled_s, now_s=time.time(),
                                stale_after_s=max(5.0, 5.0 / monitor.settings.sample_hz))]


def start_platform_monitor(node: Node, settings: Any) -> Optional[PlatformMonitor]:
    """Probe the machine and start sampling; None when platform.enabled is false."""
    if not bool(settings["platform.enabled"]):
        return None
    monitor = PlatformMonitor(PlatformSettings(
        sysfs_root=str(settings["platform.sysfs_root"]),
        sample_hz=float(settings["platform.sample_hz"]),
        hot_c=float(settings["platform.hot_c"]), use_jtop=bool(settings["platform.use_jtop"])))
    bandwidth = float(settings["benchmark.memory_bandwidth_gbps"]) * 1e9 or None
    record = monitor.machine(bandwidth_override_bytes_per_s=bandwidth)
    monitor.start()
    node.get_logger().info(
        f"platform: {record.module_model or record.cpu_model or 'unknown machine'}, power "
        f"mode {record.power_mode or 'not measured'}, sensors {monitor.source}"
        + (f" (simulated: the simulator's platform files under {record.simulated_root})"
           if record.simulated_root else ""))
    for warning in machine_warnings(record):
        node.get_logger().warning(f"platform: {warning}")
    return monitor


def start_platform_publisher(node: Node, monitor: Optional[PlatformMonitor],
                             rate_hz: float) -> Optional[PlatformStatusPublisher]:
    """Publish ~/platform_status for a running monitor (None without one)."""
    if monitor is None:
        return None
    from shadowhound_llm_bench_interfaces.msg import PlatformStatus

    return PlatformStatusPublisher(node, msg_type=PlatformStatus, monitor=monitor,
                                   rate_hz=rate_hz)
