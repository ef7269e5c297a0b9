"""
Start the simulator as a local process or as a Docker container, and wait until it answers.

Local: `with start_local_simulator(scenario='small') as sim: ollama.Client(host=sim.base_url)`.
Docker: `start_container_simulator(docker_client=docker.from_env(), name='ollama',
scenario='thor', port=11434)` returns a ContainerSimulator (remove() when done).
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

from ..common.process_group import start_process_group, stop_process_group
from ..common.kernel_text import parse_memory_stat
from ..common.net import free_port
from .__main__ import READY_PREFIX
from .machine import MEMORY_CGROUP_ROOT, SimMachine, remove_machine, start_machine
from .scenario import REPO_ROOT, load_scenario, scenario_path

IMAGE = 'shadowhound-ollama-sim:local'
LABEL = 'shadowhound.sim'
HOST_MOUNTS = ['/usr', '/lib', '/lib64', '/bin', '/etc']


class SimulatorError(RuntimeError):
    """The simulator did not start or stopped answering."""


def wait_until_answering(base_url: str, *, timeout_s: float, alive: Any = None) -> None:
    """Poll GET /api/version until it answers 200, or raise SimulatorError at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = ''
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise SimulatorError(f'simulator at {base_url} exited while starting ({last})')
        try:
            with urllib.request.urlopen(base_url + '/api/version', timeout=1.0) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise SimulatorError(f'simulator at {base_url} did not answer within {timeout_s:.0f} s '
                         f'({last})')


class LocalSimulator:
    """A simulator running as a child process (own session; stop() ends its whole group)."""

    def __init__(self, *, process: subprocess.Popen, host: str, port: int, log_path: str,
                 machine: SimMachine, owns_machine: bool) -> None:
        self.process = process
        self.port = port
        self.base_url = f'http://{host}:{port}'
        self.log_path = log_path
        self.machine = machine
        self._owns_machine = owns_machine

    @property
    def machine_dir(self) -> str:
        """Folder of the simulated machine's readings: meminfo, drop_caches, nvidia-smi."""
        return self.machine.machine_dir

    @property
    def pid(self) -> int:
        """Process id of the server."""
        return self.process.pid

    def alive(self) -> bool:
        """Return True while the server process runs."""
        return self.process.poll() is None

    def log(self) -> str:
        """Return the server's request log so far."""
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as handle:
                return handle.read()
        except OSError:
            return ''

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the server's process group (runners included), SIGKILL if it lingers."""
        stop_process_group(self.process, grace_s=timeout_s)  # runners included
        if self.process.stdout:
            self.process.stdout.close()
        if self._owns_machine:
            self.machine.stop()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def __enter__(self) -> 'LocalSimulator':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sim_command(python: str, *, scenario: str, host: str, port: int,
                 extra_faults: Optional[Dict[str, Any]], limit_mode: str,
                 machine: Optional[SimMachine] = None, join_cgroup: str = '') -> List[str]:
    argv = [python, '-m', 'shadowhound_llm_bench.sim', '--scenario', scenario,
            '--host', host, '--port', str(port), '--limit-mode', limit_mode]
    if machine is not None:
        argv += ['--machine-dir', machine.machine_dir, '--blobs-dir', machine.blobs_dir]
    if join_cgroup:
        argv += ['--join-cgroup', join_cgroup]
    if extra_faults:
        argv += ['--faults', json.dumps(extra_faults)]
    return argv


def _read_ready_line(stream: Any, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    buffer = b''
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        if b'\n' in buffer:
            return buffer.split(b'\n', 1)[0].decode()
    raise SimulatorError(f'no ready line from the simulator within {timeout_s:.0f} s '
                         f'(got {buffer[:200]!r})')


def start_local_simulator(*, scenario: str, port: int = 0,
                          extra_faults: Optional[Dict[str, Any]] = None,
                          host: str = '127.0.0.1', limit_mode: str = 'auto',
                          machine: Optional[SimMachine] = None,
                          ready_timeout_s: float = 20.0) -> LocalSimulator:
    """
    Start `python -m shadowhound_llm_bench.sim` and wait until it answers /api/version.

    Port 0 lets the server pick a free port; the chosen one is in .port and .base_url.
    The server runs in the machine's `ollama` cgroup (the scenario's container limit, enforced
    by the kernel) inside a simulated machine started for it (or `machine`, kept running).
    Without cgroups (not root) the limit is emulated: a runner past it is SIGKILLed.
    """
    sim_scenario = load_scenario(scenario)  # fail here, clearly, for an unknown scenario
    owns_machine = machine is None
    machine = machine or start_machine(sim_scenario)
    join_cgroup = machine.sub_cgroup('ollama', sim_scenario.container_limit_physical_bytes)
    if limit_mode == 'auto':
        limit_mode = 'cgroup' if join_cgroup else 'emulated'
    log_fd, log_path = tempfile.mkstemp(prefix='ollama_sim_', suffix='.log')
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    try:
        process = start_process_group(
            _sim_command(sys.executable, scenario=scenario, host=host, port=port,
                         extra_faults=extra_faults, limit_mode=limit_mode, machine=machine,
                         join_cgroup=join_cgroup),
            stdout=subprocess.PIPE, stderr=log_fd, cwd=REPO_ROOT, env=env)
    except OSError:
        if owns_machine:
            machine.stop()
        raise
    finally:
        os.close(log_fd)
    sim = LocalSimulator(process=process, host=host, port=port, log_path=log_path,
                         machine=machine, owns_machine=owns_machine)
    if not join_cgroup:
        machine.join(process.pid, 'ollama')
    try:
        line = _read_ready_line(process.stdout, ready_timeout_s)
        if not line.startswith(READY_PREFIX):
            raise SimulatorError(f'unexpected first line from the simulator: {line!r}')
        url = line[len(READY_PREFIX):].split()[0]
        sim.port = int(url.rsplit(':', 1)[1])
        sim.base_url = f'http://{host}:{sim.port}'
        wait_until_answering(sim.base_url, timeout_s=ready_timeout_s, alive=sim.alive)
    except SimulatorError as exc:
        sim.stop()
        raise SimulatorError(f'{exc}; log: {sim.log()[-2000:]}') from exc
    return sim


# ---- Docker -----------------------------------------------------------------------------------
def build_sim_image(docker_client: Any, *, image: str = IMAGE, rebuild: bool = False) -> str:
    """Create the (empty) image locally, no registry: everything comes from read-only binds."""
    import docker.errors  # only the container path needs the SDK

    if not rebuild:
        try:
            docker_client.images.get(image)
            return image
        except docker.errors.ImageNotFound:
            pass
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w'):
        pass
    repository, _, tag = image.partition(':')
    result = docker_client.api.import_image_from_data(
        data.getvalue(), repository=repository, tag=tag or 'latest',
        changes=['CMD ["/bin/true"]', f'LABEL {LABEL}=1'])
    try:
        docker_client.images.get(image)
    except docker.errors.ImageNotFound:  # Podman names an import after its repository alone
        imported = re.findall(r'sha256:[0-9a-f]{64}', str(result))
        if not imported:
            raise SimulatorError(f'importing the simulator image gave no image ID: {result}')
        docker_client.images.get(imported[-1]).tag(repository, tag or 'latest')
    return image


def _bind_mounts(scenario: str, machine: SimMachine) -> Dict[str, Dict[str, str]]:
    paths = list(HOST_MOUNTS) + [sys.base_prefix, sys.prefix, REPO_ROOT,
                                 os.path.dirname(scenario_path(scenario))]
    volumes: Dict[str, Dict[str, str]] = {}
    for path in paths:
        if os.path.exists(path) and path not in volumes:
            volumes[path] = {'bind': path, 'mode': 'ro'}
    # The machine's folder (meminfo, the GPU driver's socket) and the model blobs.
    volumes[machine.machine_dir] = {'bind': machine.machine_dir, 'mode': 'rw'}
    volumes[machine.blobs_dir] = {'bind': machine.blobs_dir, 'mode': 'rw'}
    return volumes


class ContainerSimulator:
    """A simulator running in a Docker container (host network, init process, memory limit)."""

    def __init__(self, *, container: Any, port: int, ready_timeout_s: float,
                 machine: SimMachine, owns_machine: bool) -> None:
        self.container = container
        self.port = port
        self.base_url = f'http://127.0.0.1:{port}'
        self._ready_timeout_s = ready_timeout_s
        self.machine = machine
        self._owns_machine = owns_machine

    @property
    def machine_dir(self) -> str:
        """Folder of the simulated machine's readings: meminfo, drop_caches, nvidia-smi."""
        return self.machine.machine_dir

    @property
    def name(self) -> str:
        """Container name."""
        return str(self.container.name)

    def _alive(self) -> bool:
        self.container.reload()
        return self.container.status in ('running', 'created', 'restarting')

    def wait_ready(self, timeout_s: Optional[float] = None) -> None:
        """Block until the API answers (after start or restart)."""
        try:
            wait_until_answering(self.base_url, timeout_s=timeout_s or self._ready_timeout_s,
                                 alive=self._alive)
        except SimulatorError as exc:
            logs = self.container.logs(tail=40).decode(errors='replace')
            raise SimulatorError(f'{exc}; container logs: {logs}') from exc

    def restart(self, timeout_s: int = 5) -> float:
        """Restart the container and wait until it answers; returns the seconds it took."""
        started = time.monotonic()
        self.container.restart(timeout=timeout_s)
        self.wait_ready()
        return time.monotonic() - started

    def _cgroup_folder(self) -> str:
        """Return the container's cgroup folder: Docker names it <id>, Podman libpod-<id>."""
        parent = self.machine.cgroup_dir or '/sys/fs/cgroup/memory/docker'
        docker_folder = f'{parent}/{self.container.id}'
        podman_folder = f'{parent}/libpod-{self.container.id}'
        return podman_folder if os.path.isdir(podman_folder) else docker_folder

    def memory_usage_bytes(self) -> int:
        """Return the container's cgroup memory usage (host cgroup files, else Docker stats)."""
        cid = self.container.id
        for path in (f'{self._cgroup_folder()}/memory.usage_in_bytes',
                     f'/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes',
                     f'/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.current',
                     f'/sys/fs/cgroup/docker/{cid}/memory.current'):
            try:
                with open(path, encoding='ascii') as handle:
                    return int(handle.read().strip())
            except (OSError, ValueError):
                continue
        stats = self.container.stats(stream=False)
        return int(stats['memory_stats'].get('usage', 0))

    def memory_working_set_bytes(self) -> int:
        """Return the container's usage minus its inactive page cache (as `docker stats`)."""
        folder = self._cgroup_folder()
        usage = self.memory_usage_bytes()
        try:
            with open(f'{folder}/memory.stat', encoding='ascii') as handle:
                stat = parse_memory_stat(handle.read())
        except (OSError, ValueError):
            return usage
        return usage - int(stat.get('total_inactive_file', 0))

    def stop(self, timeout_s: int = 5) -> None:
        """Stop the container (it stays, for logs and restart)."""
        self.container.stop(timeout=timeout_s)

    def remove(self) -> None:
        """Remove the container, stopping it first (and the machine started with it)."""
        try:
            self.container.remove(force=True)
        finally:
            if self._owns_machine:
                self.machine.stop()

    def __enter__(self) -> 'ContainerSimulator':
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def start_container_simulator(*, docker_client: Any, name: str = 'ollama', scenario: str,
                              port: int, mem_limit_bytes: Optional[int] = None,
                              extra_faults: Optional[Dict[str, Any]] = None,
                              image: str = IMAGE, replace: bool = True,
                              machine: Optional[SimMachine] = None,
                              ready_timeout_s: float = 30.0) -> ContainerSimulator:
    """
    Run the simulator in container `name` on the host network and wait until it answers.

    mem_limit_bytes defaults to the scenario's container limit (scaled). Port 0 picks a free
    port. replace=True removes an earlier simulator container of that name (never a foreign one).
    The container runs inside a simulated machine (`machine`, or one started for it and stopped
    by remove()): cgroup_parent is the machine's cgroup, its folder is bind-mounted.
    """
    import docker.errors  # only the container path needs the SDK

    sim_scenario = load_scenario(scenario)
    limit = mem_limit_bytes if mem_limit_bytes is not None \
        else sim_scenario.container_limit_physical_bytes
    port = port or free_port()
    build_sim_image(docker_client, image=image)
    try:
        old = docker_client.containers.get(name)
        if not replace or old.labels.get(LABEL) != '1':
            raise SimulatorError(f'a container named {name!r} already exists')
        remove_container_simulator(docker_client, name)
    except docker.errors.NotFound:
        pass
    python = os.path.join(sys.prefix, 'bin', 'python')
    kwargs: Dict[str, Any] = {}
    if limit:
        kwargs.update(mem_limit=int(limit), memswap_limit=int(limit))
    owns_machine = machine is None
    machine = machine or start_machine(sim_scenario)
    if machine.cgroup_parent:
        kwargs['cgroup_parent'] = machine.cgroup_parent
    try:
        container = docker_client.containers.run(
            image, _sim_command(python, scenario=scenario, host='127.0.0.1', port=port,
                                extra_faults=extra_faults, limit_mode='cgroup',
                                machine=machine),
            name=name, detach=True, init=True, network_mode='host',
            volumes=_bind_mounts(scenario, machine), working_dir=REPO_ROOT,
            environment={'PYTHONPATH': REPO_ROOT, 'PYTHONDONTWRITEBYTECODE': '1',
                         'HOME': '/tmp'},
            tmpfs={'/tmp': 'size=16m'}, labels={LABEL: '1'},
            stop_signal='SIGTERM', **kwargs)
    except Exception:
        try:  # created but not started (the engine refused to start it): not left behind
            docker_client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        if owns_machine:
            machine.stop()
        raise
    sim = ContainerSimulator(container=container, port=port, ready_timeout_s=ready_timeout_s,
                             machine=machine, owns_machine=owns_machine)
    try:
        sim.wait_ready()
    except SimulatorError:
        sim.remove()
        raise
    return sim


def remove_container_simulator(docker_client: Any, name: str) -> str:
    """Remove simulator container `name` and the machine it runs in; return what was removed."""
    import docker.errors  # only the container path needs the SDK

    try:
        container = docker_client.containers.get(name)
    except docker.errors.NotFound as exc:
        raise SimulatorError(f'no container named {name!r}') from exc
    if container.labels.get(LABEL) != '1':
        raise SimulatorError(f'container {name!r} is not a simulator container')
    command = list(container.attrs.get('Config', {}).get('Cmd') or [])

    def option(flag: str) -> str:
        return command[command.index(flag) + 1] if flag in command[:-1] else ''
    parent = (container.attrs.get('HostConfig', {}).get('CgroupParent') or '').strip('/')
    cgroup_dir = os.path.join(MEMORY_CGROUP_ROOT, parent) if parent.startswith('shb-machine-') \
        else ''
    machine_dir = option('--machine-dir')
    container.remove(force=True)
    remove_machine(machine_dir=machine_dir, cgroup_dir=cgroup_dir, blobs_dir=option('--blobs-dir'))
    return f'container {name} and machine {machine_dir or "(none)"}'


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m shadowhound_llm_bench.sim.launcher build|run ...` (the docker/ scripts)."""
    import argparse

    import docker

    parser = argparse.ArgumentParser(prog='sim-container')
    sub = parser.add_subparsers(dest='command', required=True)
    build = sub.add_parser('build', help='create the simulator image locally')
    build.add_argument('--image', default=IMAGE)
    build.add_argument('--rebuild', action='store_true')
    run = sub.add_parser('run', help='start the simulator container')
    run.add_argument('--name', default='ollama')
    run.add_argument('--scenario', default='thor')
    run.add_argument('--port', type=int, default=11434)
    run.add_argument('--mem-limit-bytes', type=int, default=None)
    run.add_argument('--faults', default='')
    run.add_argument('--image', default=IMAGE)
    remove = sub.add_parser('remove', help='remove a simulator container and its machine')
    remove.add_argument('--name', default='ollama')
    args = parser.parse_args(argv)
    client = docker.from_env()
    try:
        if args.command == 'build':
            started = time.monotonic()
            build_sim_image(client, image=args.image, rebuild=args.rebuild)
            print(f'image {args.image} ready in {time.monotonic() - started:.2f} s')
            return 0
        if args.command == 'remove':
            print(f'removed {remove_container_simulator(client, args.name)}')
            return 0
        sim = start_container_simulator(
            docker_client=client, name=args.name, scenario=args.scenario, port=args.port,
            mem_limit_bytes=args.mem_limit_bytes,
            extra_faults=json.loads(args.faults) if args.faults else None, image=args.image)
        print(f'container {sim.name} answers at {sim.base_url}; machine readings in '
              f'{sim.machine_dir} (meminfo, drop_caches, nvidia-smi); machine cgroup '
              f'{sim.machine.cgroup_dir or "none (emulated accounting)"}')
        return 0
    except (SimulatorError, ValueError) as exc:
        print(f'sim-container: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
