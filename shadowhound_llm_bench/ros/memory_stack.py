"""Build the node's memory sources from its settings: container backend, host, ROS headroom."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from ..adapters.container_backend import ContainerBackend
from ..adapters.host_memory import HostMemory, ProcMeminfoHost
from ..adapters.simulated_host import SimulatedHost
from ..adapters.ollama_client import OllamaClient
from ..core.settings.node_settings import NodeSettings
from ..engine.memory_monitor import MemoryMonitor
from ..engine.model_memory import open_model_memory_gauge
from ..engine.ros_gpu_memory import RosGpuMemory
from ..engine.ros_headroom import RosHeadroom


class MemoryStackError(RuntimeError):
    """The container (or its backend) cannot be reached at start-up."""


@dataclass
class MemoryStack:
    """What the node samples memory with; the monitor runs on its own thread."""

    backend: ContainerBackend
    host: HostMemory
    headroom: Optional[RosHeadroom]
    monitor: MemoryMonitor
    container_name: str
    backend_choice: str = ""  # which backend and why (log, /diagnostics, report)

    def top_consumers(self) -> Tuple[Optional[int], Sequence[Tuple[str, int]]]:
        """Live ROS bytes and the largest ROS consumers from the last scan (no I/O)."""
        if self.headroom is None:
            reading = self.monitor.latest()
            return (reading.ros_live_bytes if reading else None), []
        latest = self.headroom.latest()
        if latest is None:
            return None, []
        return latest.live_bytes, list(latest.top)

    def backend_info(self) -> str:
        """Which backend and why, with what it reads now (no I/O: for /diagnostics)."""
        choice = str(getattr(self.backend, "selection_reason", "") or self.backend_choice)
        describe = getattr(self.backend, "describe", None)
        now = describe() if describe is not None else ""
        return choice if not now or now in choice else f"{choice}; now: {now}"

    def waiting_fix(self) -> str:
        """Say what is missing and the fix while `auto` still looks for Ollama ("" if none)."""
        fix = getattr(self.backend, "waiting_fix", None)
        return fix() if fix is not None else ""

    def close(self) -> None:
        self.monitor.stop()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def _backend(settings: NodeSettings) -> Tuple[ContainerBackend, List[str]]:
    kind = settings["container.backend"]
    name = settings["container.name"]
    host = settings["ollama_host"]
    if kind == "process":
        from ..adapters.process_container import ProcessContainer
        backend = ProcessContainer(name=name, argv=settings.values["container.command"],
                                   ollama_base_url=host, refuse_when_answering=True)
        try:
            backend.start(deadline_s=float(settings["container.restart_timeout_s"]))
        except Exception as exc:
            backend.close()
            raise MemoryStackError(f"cannot start {settings['container.command']}: {exc}") \
                from exc
        backend.selection_reason = f"backend process: {backend.describe()}"
        return backend, []
    from ..adapters.backend_selection import select_backend
    try:
        backend = select_backend(
            kind=kind, name=name, ollama_base_url=host, api_client=OllamaClient(base_url=host),
            systemctl=[a for a in settings.values["container.systemctl"] if a] or ["systemctl"],
            memory_scale=settings.simulated_machine().memory_scale, follow=True)
    except Exception as exc:  # engine down, no container or unit, no rights
        what = {"docker": "Docker container", "podman": "Podman container",
                "systemd": "systemd unit"}.get(kind, f"the {kind} backend for")
        raise MemoryStackError(
            f"cannot reach {what} {name!r} ({type(exc).__name__}: {exc}); start it, set "
            "DOCKER_HOST, or use container.backend:=auto or api_only") from exc
    container_id = str(getattr(backend, "container_id", "") or "")
    return backend, [container_id] if container_id else []


def build_memory_stack(settings: NodeSettings) -> MemoryStack:
    """Container backend, host memory, ROS headroom and a started monitor; MemoryStackError."""
    backend, container_ids = _backend(settings)
    machine = settings.simulated_machine()
    if machine.simulated_host:  # the simulator's machine (simulation.total_gib)
        host: HostMemory = SimulatedHost(total_bytes=machine.total_bytes,
                                         system_reserve_bytes=machine.system_reserve_bytes)
    else:
        host = ProcMeminfoHost(path=str(settings["memory.meminfo_path"]))
    gauge = open_model_memory_gauge(settings.memory_source_settings())
    headroom: Optional[Any] = None
    fixed_reserve = 0
    if settings["reserve.fixed_gib"] >= 0:
        fixed_reserve = settings.gib_bytes("reserve.fixed_gib")
    else:
        # Only this node's own process is left out, never the launch that started it.
        # GPU memory of ROS processes counts where the machine reports it per process.
        gpu = RosGpuMemory.open(str(settings["memory.nvidia_smi_command"]))
        headroom = RosHeadroom.from_settings(settings.reserve_settings(),
                                             exclude_pids=[os.getpid()],
                                             exclude_container_ids=container_ids, gpu=gpu)
    if headroom is not None and hasattr(backend, "on_found"):
        scanner = headroom.scanner  # a container found later is left out of the ROS scan too
        backend.on_found = lambda found: scanner.set_exclusions(
            pids=[os.getpid()], container_ids=[str(getattr(found, "container_id", "") or "")])
    monitor = MemoryMonitor(backend=backend, host=host,
                            safety_buffer_bytes=settings.policy_settings().safety_buffer_bytes,
                            period_s=float(settings["sample_period_s"]), headroom=headroom,
                            fixed_ros_reserve_bytes=fixed_reserve, model_memory=gauge,
                            headroom_period_s=float(settings["reserve.scan_period_s"]))
    monitor.start()
    return MemoryStack(backend=backend, host=host, headroom=headroom, monitor=monitor,
                       container_name=str(settings["container.name"]),
                       backend_choice=str(getattr(backend, "selection_reason", "") or ""))
