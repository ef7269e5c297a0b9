"""Ollama-like scheduling: a runner per model, keep_alive, max loaded, pre-load check, unload."""

from __future__ import annotations

import mmap
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import platform_sysfs
from .blobs import ensure_blob
from .catalog import ModelSpec
from .faults import Faults
from .fit_check import free_memory_physical_bytes, refusal_message
from .memory_limit import CGROUP, EMULATED, own_rss_bytes
from .ollama_estimate import OllamaEstimate, estimate_model_memory
from .runner import RunnerProcess, set_oom_score_adj
from .scenario import Scenario

GIB = 1024 ** 3
READY = 'ready'
UNLOADING = 'unloading'


class LoadError(Exception):
    """A model that could not be loaded: HTTP status and Ollama's error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class LoadedModel:
    """A model with a live runner."""

    spec: ModelSpec
    num_ctx: int
    footprint_bytes: int  # real machine's bytes, Ollama's estimate: /api/ps `size`
    vram_bytes: int  # /api/ps `size_vram`
    resident_bytes: int  # bytes the runner process itself holds here
    runner: RunnerProcess
    load_duration_s: float  # simulated
    state: str = READY
    expires_at: Optional[float] = None  # time.time(); None = forever
    active: int = 0
    busy: threading.Lock = field(default_factory=threading.Lock)
    gone: threading.Event = field(default_factory=threading.Event)
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class LeakedBlock:
    """Memory a leaky unload left behind in the server process."""

    model: str
    bytes: int
    real_bytes: int
    block: mmap.mmap


class Scheduler:
    """Loads, keeps and unloads models the way Ollama's scheduler does, with real memory."""

    def __init__(self, *, scenario: Scenario, faults: Faults, limit_mode: str = EMULATED,
                 machine_dir: str = '', blobs_dir: str = '') -> None:
        self.scenario = scenario
        self.faults = faults
        self.limit_mode = limit_mode
        self.machine_dir = machine_dir  # meminfo and the GPU driver's socket ('' = none)
        self.blobs_dir = blobs_dir
        self.unified = scenario.memory_model == 'unified'
        self.refusals = 0
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()
        self._models: Dict[str, LoadedModel] = {}
        self._leaks: List[LeakedBlock] = []
        self._stopping = threading.Event()
        self._loads = 0
        self._failed_loads = 0
        self._rand = random.Random(os.getpid())
        set_oom_score_adj(os.getpid(), -500)
        self._reaper = threading.Thread(target=self._expiry_loop, name='keep-alive', daemon=True)
        self._reaper.start()

    # ---- requests -------------------------------------------------------------------------
    def acquire(self, spec: ModelSpec, *, num_ctx: int) -> LoadedModel:
        """Return a ready model for one request (loading it if needed); release() when done."""
        while True:
            model = self._take_ready(spec, num_ctx)
            if model is not None:
                return model
            with self._load_lock:  # loads are serialised, as in Ollama's scheduler
                model = self._take_ready(spec, num_ctx)
                if model is not None:
                    return model
                with self._lock:
                    current = self._models.get(spec.name)
                if current is None:
                    model = self._load(spec, num_ctx)
                    with self._lock:
                        model.active += 1
                        self._models[spec.name] = model
                    return model
            current.gone.wait(timeout=30.0)

    def _take_ready(self, spec: ModelSpec, num_ctx: int) -> Optional[LoadedModel]:
        with self._lock:
            current = self._models.get(spec.name)
            if current is None:
                return None
            if current.state == READY and current.runner.alive() and current.num_ctx == num_ctx:
                current.active += 1
                current.expires_at = None
                current.load_duration_s = 0.0
                return current
            if current.state == READY and current.active == 0:
                self._begin_unload(current, delay=False)  # other num_ctx: reload
        return None

    def release(self, model: LoadedModel, keep_alive_s: float) -> None:
        """End a request: start the model's keep_alive timer or unload it now."""
        with self._lock:
            model.active = max(0, model.active - 1)
            model.last_used = time.monotonic()
            if model.state != READY:
                return
            if keep_alive_s == 0:
                self._begin_unload(model)
            elif keep_alive_s < 0:
                model.expires_at = None
            else:
                model.expires_at = time.time() + keep_alive_s

    def unload(self, name: str) -> bool:
        """Unload a model asynchronously (the reply does not wait); False when not loaded."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                return False
            if model.state == READY:
                self._begin_unload(model)
            return True

    def loaded(self) -> List[LoadedModel]:
        """Models with a runner (ready or unloading), oldest first."""
        with self._lock:
            return list(self._models.values())

    # ---- loading --------------------------------------------------------------------------
    def estimate(self, spec: ModelSpec, num_ctx: int) -> OllamaEstimate:
        """Ollama's estimate of a model on this machine (the simulator's ground truth)."""
        scenario = self.scenario
        return estimate_model_memory(spec, num_ctx=num_ctx, num_parallel=scenario.num_parallel,
                                     kv_cache_type=scenario.kv_cache_type, on_gpu=self.unified,
                                     version=scenario.version)

    def _load(self, spec: ModelSpec, num_ctx: int) -> LoadedModel:
        """Make room and start a runner; called under the load lock."""
        scenario = self.scenario
        estimate = self.estimate(spec, num_ctx)
        footprint = estimate.total_bytes
        self._make_room(footprint)
        driver = bool(self.machine_dir) and self.unified
        if driver:  # device memory is the driver's; the runner holds its CPU-side share
            resident = scenario.physical_bytes(scenario.runner_cpu_bytes)
            device = scenario.physical_bytes(footprint)
        else:  # weights copied into the runner's buffers, KV cache and graph: all anonymous
            resident = scenario.physical_bytes(footprint)
            device = 0
        blob_bytes = scenario.physical_bytes(spec.size_bytes)
        blob = ensure_blob(self.blobs_dir, spec, blob_bytes) if self.blobs_dir else ''
        load_s = scenario.load_base_s + footprint / scenario.load_bytes_per_s
        with self._lock:
            other_models = any(m.state == READY for m in self._models.values())
            die_at = self._emulated_room_bytes()
        cascade = self.faults.take_cascade()
        crash = not cascade and self.faults.take_crash(spec.name)
        if cascade:
            die_at = resident // 10
        runner = RunnerProcess(
            model=spec.name, resident_bytes=resident,
            load_wall_s=scenario.wall_seconds(load_s), die_at_bytes=die_at,
            crash_at_fraction=0.5 if crash else -1.0, blob_path=blob,
            blob_bytes=blob_bytes if blob else 0, device_bytes=device,
            gpu_socket=os.path.join(self.machine_dir, 'gpu.sock') if driver else '')
        self._loads += 1
        with platform_sysfs.begin('load', spec.name):
            outcome = runner.wait_ready(timeout_s=scenario.wall_seconds(load_s) * 3 + 60.0)
        if outcome is not None:
            self._failed_loads += 1
            if outcome.oom_like and not cascade:
                self.faults.on_oom_kill(other_models_loaded=other_models)
            port = self._rand.randint(32768, 60999)
            if outcome.oom_like and not cascade and _runs_llama_server(scenario.version):
                # v0.32.15 under a cgroup limit (recorded): its llama-server child was killed.
                raise LoadError(500, 'llama-server process has terminated: signal: killed')
            if outcome.oom_like or cascade:  # the seed's v0.12.6 text (Jetson)
                raise LoadError(500, f'do load request: Post "http://127.0.0.1:{port}/load": EOF')
            raise LoadError(500, 'llama runner process has terminated: exit status '
                                 f'{outcome.returncode}')
        set_oom_score_adj(runner.pid, 0)  # loaded: no longer the preferred OOM victim
        return LoadedModel(spec=spec, num_ctx=num_ctx, footprint_bytes=footprint,
                           vram_bytes=estimate.vram_bytes, resident_bytes=resident,
                           runner=runner, load_duration_s=load_s)

    def free_bytes(self) -> int:
        """Free memory as Ollama reads it on this machine (the simulated machine's bytes)."""
        if self.machine_dir and self.scenario.fit_check == 'ollama':
            physical = free_memory_physical_bytes(
                unified=self.unified, meminfo_path=os.path.join(self.machine_dir, 'meminfo'))
            if physical is not None:
                return int(physical / self.scenario.memory_scale)
        with self._lock:  # scripted: what the server believes it may fill
            used = sum(m.footprint_bytes for m in self._models.values())
            used += sum(leak.real_bytes for leak in self._leaks)
        return max(0, self.scenario.believed_total_bytes - used)

    def _make_room(self, footprint: int) -> None:
        """Evict idle models for the max-loaded setting and the pre-load memory check."""
        while len(self.loaded()) >= max(1, self.scenario.max_loaded_models):
            if not self._evict_one():
                break
        while True:
            # No wait for memory to come back after an eviction on an iGPU (sched.go
            # waitForVRAMRecovery returns at once for integrated GPUs): check right away.
            available = self.free_bytes()
            if footprint <= available:
                return
            if not self._evict_one():
                self.refusals += 1
                raise LoadError(500, refusal_message(footprint, available))

    def _evict_one(self) -> bool:
        """Unload the least recently used idle model and wait until it is gone."""
        with self._lock:
            idle = [m for m in self._models.values() if m.active == 0]
            if not idle:
                return False
            victim = min(idle, key=lambda m: (m.state == READY, m.last_used))
            if victim.state == READY:
                self._begin_unload(victim, delay=False)
        victim.gone.wait(timeout=30.0)
        return True

    def _emulated_room_bytes(self) -> int:
        """
        Bytes a new runner may touch before the emulated limit kills it (-1: the kernel decides).

        Emulated only where no kernel limit can decide (no memory cgroup could be created).
        """
        limit = self.scenario.container_limit_physical_bytes
        if self.limit_mode == CGROUP or limit <= 0:
            return -1
        used = own_rss_bytes() + sum(m.runner.rss_bytes() for m in self._models.values())
        return max(0, limit - used)

    # ---- unloading ------------------------------------------------------------------------
    def _begin_unload(self, model: LoadedModel, delay: bool = True) -> None:
        model.state = UNLOADING
        model.expires_at = time.time()
        wait_s = self.scenario.wall_seconds(self.scenario.unload_delay_s) if delay else 0.0
        threading.Thread(target=self._finish_unload, args=(model, wait_s),
                         name=f'unload-{model.spec.name}', daemon=True).start()

    def _finish_unload(self, model: LoadedModel, wait_s: float) -> None:
        with model.busy:  # a request still decoding finishes first
            pass
        if wait_s > 0:
            self._stopping.wait(wait_s)
        fraction = self.faults.leak_fraction(model.spec.name)
        leaks = fraction > 0 and model.runner.alive()
        model.runner.stop(timeout_s=5.0)
        if leaks:
            # Held after the runner is gone (never both at once), and before the model leaves
            # /api/ps, so a client that sees it gone sees the memory that stayed up.
            self._leak(model, fraction)
        with self._lock:
            if self._models.get(model.spec.name) is model:
                del self._models[model.spec.name]
        self.faults.on_unload()
        model.gone.set()

    def _leak(self, model: LoadedModel, fraction: float) -> None:
        size = max(mmap.PAGESIZE,
                   int(self.scenario.physical_bytes(model.footprint_bytes) * fraction))
        block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        with self._lock:
            self._leaks.append(LeakedBlock(model=model.spec.name, bytes=size,
                                           real_bytes=int(model.footprint_bytes * fraction),
                                           block=block))

    def _expiry_loop(self) -> None:
        while not self._stopping.wait(0.1):
            now = time.time()
            with self._lock:
                for model in list(self._models.values()):
                    if model.state != READY:
                        continue
                    if not model.runner.alive():  # killed after loading (OOM or by hand)
                        del self._models[model.spec.name]
                        model.gone.set()
                    elif model.active == 0 and model.expires_at is not None \
                            and model.expires_at <= now:
                        self._begin_unload(model, delay=False)

    # ---- state ----------------------------------------------------------------------------
    def state(self) -> Dict[str, object]:
        """Runner pids and bytes, leaks and counters for /sim/state."""
        with self._lock:
            models = [{
                'name': m.spec.name, 'state': m.state, 'pid': m.runner.pid,
                'num_ctx': m.num_ctx, 'footprint_bytes': m.footprint_bytes,
                'vram_bytes': m.vram_bytes, 'device_physical_bytes': m.runner.device_bytes,
                'resident_bytes': m.resident_bytes, 'anon_bytes': m.runner.anon_bytes(),
                'expires_at': m.expires_at, 'active_requests': m.active,
            } for m in self._models.values()]
            leaks = [{'model': leak.model, 'bytes': leak.bytes, 'real_bytes': leak.real_bytes}
                     for leak in self._leaks]
        return {
            'pid': os.getpid(), 'limit_mode': self.limit_mode,
            'server_rss_bytes': own_rss_bytes(), 'models': models, 'leaks': leaks,
            'leaked_bytes': sum(leak['bytes'] for leak in leaks),
            'loads': self._loads, 'failed_loads': self._failed_loads,
            'refusals': self.refusals, 'memory_model': self.scenario.memory_model,
            'machine_dir': self.machine_dir,
        }

    def shutdown(self) -> None:
        """Kill every runner now (the server is going away)."""
        self._stopping.set()
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
        for model in models:
            model.runner.kill()
            model.gone.set()


def _runs_llama_server(version: str) -> bool:
    """Tell whether a release runs models in llama-server (0.30.0 and later)."""
    try:
        return tuple(int(p) for p in version.split('-')[0].split('.')[:3]) >= (0, 30, 0)
    except ValueError:
        return False
