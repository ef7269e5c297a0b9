"""The CLI's memory guard: the named container or the API, and the ROS reserve it holds."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..adapters.container_backend import ContainerBackend
from ..adapters.ollama_client import OllamaClient
from ..core.memory.memory_sources import MemorySourceSettings
from ..core.memory.ros_reserve import RosReserveSettings
from ..core.units import to_gib
from .guard_building import build_memory_guard, default_footprint_cache_path
from .ros_headroom import RosHeadroom, RosHeadroomReading

# A process-table scan costs far more than a container reading and ROS memory moves slowly.
ROS_SCAN_PERIOD_S = 5.0


@dataclass(frozen=True)
class CliRosReserve:
    """How the CLI holds memory back for ROS 2 / Nav2: fixed, or measured live above a floor."""

    fixed_bytes: int = -1  # >= 0: this reserve, nothing measured
    floor_bytes: int = 0  # live: never less than this (the node's default is 15 GiB)
    floor_given: bool = False  # the operator chose the floor (else: what is measured + margin)

    def describe(self, reading: Optional[RosHeadroomReading], margin_bytes: int) -> str:
        """Say how the reserve was chosen, with the numbers, for the run's first lines."""
        if self.fixed_bytes >= 0:
            return f"ROS reserve {to_gib(self.fixed_bytes):.2f} GiB, fixed (--ros-reserve-gib)"
        live = reading.live_bytes if reading is not None else 0
        reserve = reading.reserve_bytes if reading is not None else margin_bytes
        count = len(reading.processes) if reading is not None else 0
        found = (f"{count} ROS 2 process(es) use {to_gib(live):.2f} GiB" if count
                 else "no ROS 2 process runs")
        if self.floor_given:
            return (f"ROS reserve {to_gib(reserve):.2f} GiB, measured live with a floor of "
                    f"{to_gib(self.floor_bytes):.2f} GiB ({found})")
        return (f"ROS reserve {to_gib(reserve):.2f} GiB: {found}, so the reserve is what is "
                f"measured ×1.2 + {to_gib(margin_bytes):.2f} GiB margin, followed live; on a "
                "robot give --ros-reserve-gib N (fixed) or --ros-reserve-floor-gib N (live, "
                "never below N; the node uses 15)")


class EveryPeriod:
    """A RosHeadroom sampled at most once per period; in between its last reading is handed out."""

    def __init__(self, headroom: RosHeadroom, period_s: float = ROS_SCAN_PERIOD_S) -> None:
        self.headroom = headroom
        self.period_s = period_s
        self._due = 0.0
        self._lock = threading.Lock()

    @property
    def scanner(self) -> Any:
        """Return the process source (the OOM backstop reads ROS pids from it)."""
        return self.headroom.scanner

    def sample(self) -> RosHeadroomReading:
        """Scan when the period is over, else return the last reading."""
        with self._lock:
            latest = self.headroom.latest()
            if latest is not None and time.monotonic() < self._due:
                return latest
            self._due = time.monotonic() + self.period_s
        return self.headroom.sample()

    def latest(self) -> Optional[RosHeadroomReading]:
        """Return the last reading without scanning."""
        return self.headroom.latest()


def ros_headroom_for(reserve: CliRosReserve, backend: ContainerBackend) -> Optional[EveryPeriod]:
    """Return a live ROS headroom (this process and Ollama left out), or None when fixed."""
    if reserve.fixed_bytes >= 0:
        return None
    container_id = str(getattr(backend, "container_id", "") or "")
    headroom = RosHeadroom.from_settings(
        RosReserveSettings(floor_bytes=reserve.floor_bytes), exclude_pids=[os.getpid()],
        exclude_container_ids=[container_id] if container_id else [])
    return EveryPeriod(headroom)


def build_guard_for_cli(*, client: OllamaClient, container: str, preset: str,
                        num_ctx: int = 4096, memory_scale: float = 1.0,
                        footprint_cache_path: Optional[str] = None,
                        fixed_ros_reserve_bytes: int = 0,
                        policy_overrides: Optional[Mapping[str, Any]] = None,
                        memory_sources: Optional[MemorySourceSettings] = None,
                        backend_kind: str = "auto", systemctl: Sequence[str] = ("systemctl",),
                        ros_reserve: Optional[CliRosReserve] = None) -> Any:
    """
    Build the guard the CLI uses: the named container or unit (backend_kind), or the API alone.

    Without a container name the memory is estimated from /api/ps and restarts are not possible
    (the policy's restart decisions are then recorded as impossible). policy_overrides are
    PolicySettings fields (e.g. parallel_small_models=True). ros_reserve (None: the fixed
    fixed_ros_reserve_bytes) holds memory back for ROS, fixed or measured live; the same inputs
    give the same budget whatever the backend. memory_scale (the CLI's simulation group) is 1
    on a robot; a simulated machine holding that share of Ollama's bytes scales by it. Raises
    ContainerError when the named backend cannot be used, PolicySettingsError for a bad
    override.
    """
    from ..adapters.api_only_container import ApiOnlyContainer
    from ..adapters.backend_selection import select_backend
    from ..core.decider.policy_settings import preset_settings

    settings = preset_settings(preset, memory_scale=memory_scale, num_ctx=num_ctx,
                               **dict(policy_overrides or {}))
    backend: ContainerBackend
    if container:
        backend = select_backend(kind=backend_kind, name=container,
                                 ollama_base_url=client.base_url, api_client=client,
                                 systemctl=systemctl, memory_scale=memory_scale)
    else:
        backend = ApiOnlyContainer(name="ollama-api", client=client, memory_scale=memory_scale)
    headroom = None
    if ros_reserve is not None:
        headroom = ros_headroom_for(ros_reserve, backend)
        if headroom is None:
            fixed_ros_reserve_bytes = ros_reserve.fixed_bytes
    guard = build_memory_guard(
        settings=settings, client=client, backend=backend, headroom=headroom,
        fixed_ros_reserve_bytes=fixed_ros_reserve_bytes,
        footprint_cache_path=footprint_cache_path or default_footprint_cache_path(),
        memory_sources=memory_sources, memory_scale=memory_scale)
    guard.ros_headroom = headroom
    return guard
