"""Start a real Ollama server (a local process or a Docker container) and stop what was started."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import psutil

from ..common.process_group import start_process_group, stop_process_group
from ..common.net import free_port
from .dist import OllamaDist
from .models import models_dir

IMAGE = 'shadowhound-real-ollama:local'
LABEL = 'shadowhound.real_ollama'
HOST_MOUNTS = ('/usr', '/lib', '/lib64', '/bin', '/etc')
READY_DEADLINE_S = 30.0


def server_env(dist: OllamaDist, port: int, *, home: str, models: str,
               extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of `ollama serve`: its own state and port, the shared models, no pruning."""
    env = {'HOME': home, 'OLLAMA_HOST': f'127.0.0.1:{port}', 'OLLAMA_MODELS': models,
           # A server that starts prunes blobs no manifest names yet: another run may be
           # in the middle of `ollama create` in the same folder.
           'OLLAMA_NOPRUNE': '1', 'PATH': '/usr/bin:/bin'}
    if dist.needs_no_cloud:
        env['OLLAMA_NO_CLOUD'] = '1'
    env.update(extra or {})
    return env


def wait_until_answering(base_url: str, *, deadline_s: float, alive: Any = None,
                         log: Any = None) -> str:
    """Poll GET /api/version until it answers; return the version; RuntimeError at the deadline."""
    end = time.monotonic() + deadline_s
    last = ''
    while time.monotonic() < end:
        if alive is not None and not alive():
            detail = log() if log else ''
            raise RuntimeError(f'Ollama at {base_url} exited while starting:\n{detail}')
        try:
            with urllib.request.urlopen(base_url + '/api/version', timeout=1.0) as reply:
                body = reply.read().decode()
                match = re.search(r'"version"\s*:\s*"([^"]+)"', body)
                return match.group(1) if match else ''
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise RuntimeError(f'Ollama at {base_url} did not answer within {deadline_s:g} s ({last})')


class RealOllama:
    """A started server: where it answers, which release, and how to stop it."""

    def __init__(self, *, dist: OllamaDist, port: int, process: Optional[subprocess.Popen] = None,
                 container: Any = None, log_path: Optional[Path] = None,
                 state_dir: Optional[tempfile.TemporaryDirectory] = None) -> None:
        self.dist = dist
        self.port = port
        self.process = process
        self.container = container
        self._log_path = log_path
        self._state_dir = state_dir

    @property
    def version(self) -> str:
        """Return the release, e.g. `0.12.6`."""
        return self.dist.version

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT`, as OLLAMA_HOST takes it."""
        return f'127.0.0.1:{self.port}'

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f'http://{self.host_port}'

    @property
    def container_name(self) -> Optional[str]:
        """Return the container's name when the server runs in one."""
        return self.container.name if self.container is not None else None

    def server_pid(self) -> int:
        """PID of `ollama serve` as this machine sees it."""
        if self.process is not None:
            return self.process.pid
        self.container.reload()
        return int(self.container.attrs['State']['Pid'])

    def runner_pids(self) -> List[int]:
        """Return the process IDs of the model runners (`ollama runner`, `llama-server`)."""
        try:
            server = psutil.Process(self.server_pid())
            return [child.pid for child in server.children(recursive=True)
                    if 'runner' in ' '.join(child.cmdline()) or 'llama-server' in child.name()]
        except (psutil.Error, KeyError):
            return []

    def log(self) -> str:
        """Return the server's log so far."""
        if self.container is not None:
            try:
                return self.container.logs().decode(errors='replace')
            except Exception as exc:  # noqa: BLE001 - the container may be gone
                return f'(no log: {exc})'
        if self._log_path and self._log_path.exists():
            return self._log_path.read_text(errors='replace')
        return ''

    def stop(self) -> None:
        """Stop the server and its runners; remove the container and the state folder."""
        if self.process is not None:
            stop_process_group(self.process, first_signal=signal.SIGTERM, grace_s=5.0)
            self.process = None
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.container = None
        if self._state_dir is not None:
            self._state_dir.cleanup()
            self._state_dir = None

    def __enter__(self) -> 'RealOllama':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_server(dist: OllamaDist, *, port: int = 0,
                       extra_env: Optional[Dict[str, str]] = None,
                       ready_deadline_s: float = READY_DEADLINE_S) -> RealOllama:
    """Start `ollama serve` as a process group of its own with a fresh state folder."""
    port = port or free_port()
    state = tempfile.TemporaryDirectory(prefix=f'shb-ollama-{dist.version}-')
    log_path = Path(state.name) / 'server.log'
    models = models_dir()
    models.mkdir(parents=True, exist_ok=True)
    env = server_env(dist, port, home=state.name, models=str(models), extra=extra_env)
    with open(log_path, 'wb') as log:
        process = start_process_group([str(dist.binary), 'serve'], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
    server = RealOllama(dist=dist, port=port, process=process, log_path=log_path,
                        state_dir=state)
    try:
        wait_until_answering(server.base_url, deadline_s=ready_deadline_s,
                             alive=lambda: process.poll() is None, log=server.log)
    except Exception:
        server.stop()
        raise
    return server


def build_image(docker_client: Any, *, image: str = IMAGE) -> str:
    """Make the (empty) image once without a registry: everything comes from read-only binds."""
    import docker.errors

    try:
        docker_client.images.get(image)
        return image
    except docker.errors.ImageNotFound:
        pass
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w'):
        pass
    repository, _, tag = image.partition(':')
    docker_client.api.import_image_from_data(
        data.getvalue(), repository=repository, tag=tag or 'latest',
        changes=['CMD ["/bin/true"]', f'LABEL {LABEL}=1'])
    docker_client.images.get(image)
    return image


def start_container_server(docker_client: Any, dist: OllamaDist, *, name: str, port: int = 0,
                           mem_limit_bytes: Optional[int] = None,
                           extra_env: Optional[Dict[str, str]] = None,
                           ready_deadline_s: float = READY_DEADLINE_S) -> RealOllama:
    """
    Run the release's own binary in container `name` (host network, init, optional memory limit).

    An earlier container of that name is replaced only when this module made it.
    """
    import docker.errors

    port = port or free_port()
    build_image(docker_client)
    try:
        old = docker_client.containers.get(name)
        if old.labels.get(LABEL) != '1':
            raise RuntimeError(f'a container named {name!r} already exists and is not ours')
        old.remove(force=True)
    except docker.errors.NotFound:
        pass
    models = models_dir()
    models.mkdir(parents=True, exist_ok=True)
    volumes = {path: {'bind': path, 'mode': 'ro'} for path in HOST_MOUNTS if os.path.exists(path)}
    volumes[str(dist.root)] = {'bind': str(dist.root), 'mode': 'ro'}
    volumes[str(models)] = {'bind': str(models), 'mode': 'rw'}
    kwargs: Dict[str, Any] = {}
    if mem_limit_bytes:
        kwargs.update(mem_limit=int(mem_limit_bytes), memswap_limit=int(mem_limit_bytes))
    env = server_env(dist, port, home='/tmp', models=str(models), extra=extra_env)
    container = docker_client.containers.run(
        IMAGE, [str(dist.binary), 'serve'], name=name, detach=True, init=True,
        network_mode='host', volumes=volumes, environment=env, tmpfs={'/tmp': 'size=64m'},
        labels={LABEL: '1'}, stop_signal='SIGTERM', **kwargs)
    server = RealOllama(dist=dist, port=port, container=container)
    try:
        def alive() -> bool:
            container.reload()
            return container.status in ('created', 'running')
        wait_until_answering(server.base_url, deadline_s=ready_deadline_s, alive=alive,
                             log=server.log)
    except Exception:
        server.stop()
        raise
    return server
