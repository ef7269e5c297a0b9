"""Assembles the memory guard from settings: monitor, policy, kept values and calibration."""

from __future__ import annotations

import logging
from typing import Any, Optional

from ..adapters.container_backend import ContainerBackend, ContainerError
from ..adapters.host_memory import HostMemory, ProcMeminfoHost
from ..adapters.memory_sources import CacheDropper
from ..adapters.ollama_client import OllamaClient
from ..core.decider.decision import Action, Decision
from ..core.memory.memory_sources import MemorySourceSettings
from ..core.decider.policy import MemoryPolicy
from ..core.decider.policy_settings import PolicySettings
from ..core.units import to_gib
from .calibration_store import CalibrationStore, calibration_path_beside
from .footprint_cache import footprint_cache_for
from .management_costs import ManagementCosts, costs_path_beside
from .memory_calibration import apply_stored
from .memory_guard import PhaseListener, PolicyMemoryGuard
from .memory_monitor import MemoryMonitor
from .model_memory import open_model_memory_gauge
from .oom_backstop import ros_pids_of
from .server_identity import server_key_of
from . import state_dir

_LOG = logging.getLogger(__name__)


def build_memory_guard(*, settings: PolicySettings, client: OllamaClient,
                       backend: ContainerBackend, host: Optional[HostMemory] = None,
                       headroom: Optional[Any] = None, fixed_ros_reserve_bytes: int = 0,
                       footprint_cache_path: Optional[str] = None,
                       management_costs_path: Optional[str] = None,
                       limit_container_to_budget: bool = False,
                       on_phase: Optional[PhaseListener] = None,
                       memory_sources: Optional[MemorySourceSettings] = None,
                       memory_scale: float = 1.0) -> PolicyMemoryGuard:
    """
    Monitor + policy + guard from settings, with the monitor already sampling.

    host defaults to /proc/meminfo; headroom is a RosHeadroom (or anything with sample() giving
    live_bytes and reserve_bytes), else the fixed reserve applies. limit_container_to_budget sets
    the container's limit to the first reading's model budget (a runaway load kills a runner,
    not the robot). Unload and restart durations persist in management_costs_path (default:
    beside the footprint cache; "" for the run only); kept values belong to this server
    (core/ollama/server_key). With memory_sources, model memory is read from the sources calibrated
    on it; the policy may drop the page cache. memory_scale is 1 on a robot; on a simulated
    machine that holds this share of the bytes Ollama reports it scales Ollama's sizes.
    """
    gauge = None
    if memory_sources is not None:
        host = host or ProcMeminfoHost(path=memory_sources.meminfo_path)
        gauge = open_model_memory_gauge(memory_sources)
    monitor = MemoryMonitor(
        backend=backend, host=host or ProcMeminfoHost(),
        safety_buffer_bytes=settings.safety_buffer_bytes, period_s=settings.sample_period_s,
        headroom=headroom, fixed_ros_reserve_bytes=fixed_ros_reserve_bytes,
        model_memory=gauge).start()
    server = server_key_of(backend, client)  # every kept value belongs to this server
    cache = footprint_cache_for(footprint_cache_path, gauge, server)
    if management_costs_path is None and footprint_cache_path:
        management_costs_path = costs_path_beside(footprint_cache_path)
    guard = PolicyMemoryGuard(
        policy=MemoryPolicy(settings), monitor=monitor, backend=backend, client=client,
        footprint_cache=cache, on_phase=on_phase, ros_pids=ros_pids_of(headroom),
        management_costs=ManagementCosts(management_costs_path or None, server),
        memory_scale=memory_scale)
    if memory_sources is not None:
        if settings.drop_caches == "auto":
            guard.cache_dropper = CacheDropper(path=memory_sources.drop_caches_path)
        guard.calibration_store = CalibrationStore(
            calibration_path_beside(footprint_cache_path) if footprint_cache_path else None,
            server)
        apply_stored(guard)
    if limit_container_to_budget:
        reading = monitor.sample_now()
        limit = reading.model_budget_bytes + settings.safety_buffer_bytes
        try:
            backend.set_memory_limit(limit)
            guard.log_decision("", Decision(
                Action.KEEP, f"container memory limit set to the model budget "
                f"{to_gib(limit):.2f} GiB"), reading, action="limit")
        except (ContainerError, ValueError) as exc:
            _LOG.warning("cannot limit the container to the model budget: %s", exc)
    return guard


def default_footprint_cache_path() -> str:
    """~/.cache/shadowhound_llm_bench/footprints.json (XDG_CACHE_HOME respected)."""
    return state_dir.footprint_cache_path()
