"""
Idle cost of the llm_bench node: CPU (% of one core) and RSS while no run is active.

Starts the simulator (small scenario) as a local process (--backend api_only: sizes from its
/api/ps) or in a Docker container (--backend docker: the node reads the container's memory as on
the robot), then the node of each checkout given (this one, and --compare PATH for another, e.g.
/work/main) with the default parameters (live ROS reserve, 2 Hz topic, diagnostics every
second), and measures the node process's CPU time over --window-s
seconds, --repeats times, the checkouts interleaved so both see the same machine load.
Prints the median % of one core and the RSS of each, side by side, and the ratio.
Target: at most 1 % of one core at 2 Hz.

Usage: python benchmarks/node_idle_cost.py [--backend docker] [--compare /work/main]
       [--window-s 20] [--repeats 3]
"""

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence, Tuple

import psutil

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from shadowhound_llm_bench.sim.launcher import (  # noqa: E402
    start_container_simulator, start_local_simulator)

READY = 'ready: action'
MIB = 1024 ** 2


def start_node(repo: Path, base_url: str, log_path: Path, domain_id: int,
               extra: Sequence[str] = (), container: str = '') -> subprocess.Popen:
    """Start the node of a checkout; its own session, SIGINT reset to the default."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(repo)] + [
        p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p and p != str(HERE)])
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    backend = ['-p', 'container.backend:=docker', '-p', f'container.name:={container}'] \
        if container else ['-p', 'container.backend:=api_only']
    argv = [sys.executable, '-m', 'shadowhound_llm_bench.ros.node', '--ros-args', *backend,
            '-p', f'ollama_host:={base_url}',
            '-p', f'results_dir:={log_path.parent / "results"}']
    for assignment in extra:
        argv += ['-p', assignment]
    with open(log_path, 'wb') as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(repo),
                                env=env, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_ready(process: subprocess.Popen, log_path: Path, timeout_s: float = 60.0) -> None:
    """Wait for the node's ready line; raise with its log when it exits or is late."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if READY in log_path.read_text(errors='replace'):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f'node did not get ready:\n{log_path.read_text(errors="replace")}')


def cpu_percent_over(pid: int, window_s: float) -> float:
    """Return the process's CPU time (user + system, threads included) over a window, in %."""
    proc = psutil.Process(pid)
    before = proc.cpu_times()
    started = time.monotonic()
    time.sleep(window_s)
    after = proc.cpu_times()
    elapsed = time.monotonic() - started
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / elapsed


def stop(process: subprocess.Popen) -> None:
    """SIGINT the node, then SIGKILL its group if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextlib.contextmanager
def simulator(backend: str) -> Iterator[Tuple[object, str]]:
    """Start the small scenario's simulator; yield it with its container's name (or '')."""
    if backend == 'api_only':
        with start_local_simulator(scenario='small') as sim:
            yield sim, ''
        return
    import docker
    client = docker.from_env(timeout=30)
    sim = start_container_simulator(docker_client=client, scenario='small', port=0,
                                    name=f'node-idle-{uuid.uuid4().hex[:8]}')
    try:
        yield sim, sim.name
    finally:
        sim.remove()
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--compare', default='', help='another checkout to measure beside')
    parser.add_argument('--window-s', type=float, default=20.0)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup-s', type=float, default=5.0)
    parser.add_argument('--backend', choices=('api_only', 'docker'), default='api_only',
                        help='docker: the simulator in a container of the Docker engine')
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra node parameter for every node (repeatable)')
    args = parser.parse_args()
    repos = {'this': HERE}
    if args.compare:
        repos['compare'] = Path(args.compare).resolve()
    domain = 200 + int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0')) % 30
    cpu = {name: [] for name in repos}
    rss = {name: [] for name in repos}
    with tempfile.TemporaryDirectory(prefix='node-idle-') as tmp, \
            simulator(args.backend) as (sim, container):
        for repeat in range(args.repeats):
            for index, (name, repo) in enumerate(repos.items()):
                log_path = Path(tmp) / f'{name}-{repeat}.log'
                process = start_node(repo, sim.base_url, log_path, domain + index,
                                     args.param, container)
                try:
                    wait_ready(process, log_path)
                    time.sleep(args.warmup_s)
                    cpu[name].append(cpu_percent_over(process.pid, args.window_s))
                    rss[name].append(psutil.Process(process.pid).memory_info().rss / MIB)
                finally:
                    stop(process)
    extra = f', {" ".join(args.param)}' if args.param else ''
    print(f'node idle cost at 2 Hz ({args.backend} backend, live ROS reserve{extra}), '
          f'{args.repeats} x {args.window_s:g} s windows:')
    for name, repo in repos.items():
        print(f'  {name:<8} {str(repo):<28} CPU median {statistics.median(cpu[name]):5.2f} % '
              f'of one core (runs: {", ".join(f"{c:.2f}" for c in cpu[name])}), '
              f'RSS median {statistics.median(rss[name]):6.1f} MiB')
    if 'compare' in repos:
        ratio = statistics.median(cpu['this']) / max(1e-9, statistics.median(cpu['compare']))
        print(f'  CPU ratio this/compare: {ratio:.2f}')
    worst = statistics.median(cpu['this'])
    print(f'  target <= 1.00 % of one core: {"met" if worst <= 1.0 else "NOT met"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
