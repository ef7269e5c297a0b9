"""
The referee's sampling process, and the handle a benchmark starts it with.

    PYTHONPATH=benchmarks python -m referee --out FILE [--period-s 0.05]
        [--machine-cgroup DIR] [--driver-state FILE] [--ros-pid PID ...] [--server-pid PID]

It imports nothing of the product: it reads the machine cgroup's kernel accounting, /proc and
the simulated driver's own state file (the product reads meminfo, nvidia-smi and Ollama's API,
never these), and appends one JSON line per period to FILE until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from referee import truth
from referee.samples import Sample, read_samples

BENCHMARKS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Watch:
    """What the referee watches: a machine cgroup, a driver state file, ROS and server pids."""

    machine_cgroup: str = ''
    driver_state: str = ''
    ros_pids: Sequence[int] = ()
    server_pid: int = 0


def take_sample(watch: Watch) -> Sample:
    """Read every truth once, now."""
    t = time.monotonic()
    limit = usage = file_bytes = kills = 0
    groups, anon = {}, {}
    machine_pids: List[int] = []
    ros_pids = list(watch.ros_pids)
    if watch.machine_cgroup:
        whole = truth.read_group(watch.machine_cgroup)
        if whole is not None:
            limit = truth.read_int(os.path.join(watch.machine_cgroup,
                                                'memory.limit_in_bytes')) or 0
            usage, file_bytes, kills = whole.usage_bytes, whole.file_bytes, whole.oom_kills
        for name, path in truth.child_groups(watch.machine_cgroup).items():
            group = truth.read_group(path)
            if group is not None:
                groups[name] = group.usage_bytes
                anon[name] = group.anon_bytes
        machine_pids = truth.group_pids(watch.machine_cgroup)
        ros_pids += truth.group_pids(os.path.join(watch.machine_cgroup, 'ros'))
    ros_bytes, _ = truth.rss_sum(ros_pids)
    tree: List[int] = []
    server_tree_bytes = 0
    if watch.server_pid:
        tree = [watch.server_pid] + truth.descendants(watch.server_pid)
        server_tree_bytes, _ = truth.rss_sum(tree)
    runner_list = truth.runners(machine_pids + tree)
    driver = truth.read_driver(watch.driver_state) if watch.driver_state else None
    driver = driver or truth.DriverTruth()
    ros_device = sum(driver.device_by_pid.get(pid, 0) for pid in set(ros_pids))
    return Sample(
        t=t, machine_limit_bytes=limit, machine_usage_bytes=usage, machine_file_bytes=file_bytes,
        oom_kills=kills, groups=groups, group_anon=anon, pool_bytes=driver.pool_bytes,
        device_bytes=driver.device_bytes, drops=driver.drops, ros_bytes=ros_bytes,
        ros_device_bytes=ros_device,
        runners=[[p.pid, p.name, p.rss_bytes] for p in runner_list],
        server_tree_bytes=server_tree_bytes)


def run(watch: Watch, out: str, period_s: float, stop: threading.Event) -> int:
    """Append a sample every period_s until stop is set; return how many were written."""
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    written = 0
    try:
        next_t = time.monotonic()
        while not stop.is_set():
            os.write(fd, (take_sample(watch).to_json() + '\n').encode())
            written += 1
            next_t += period_s
            stop.wait(max(0.0, next_t - time.monotonic()))
            if time.monotonic() - next_t > period_s:
                next_t = time.monotonic()  # fell behind (a busy machine): do not burst
    finally:
        os.close(fd)
    return written


class Referee:
    """A running referee process; `samples()` reads what it wrote, `stop()` ends it by pid."""

    def __init__(self, out: str, watch: Watch, *, period_s: float = 0.05,
                 ready_timeout_s: float = 15.0) -> None:
        self.out = out
        self.watch = watch
        self.period_s = period_s
        argv = [sys.executable, '-m', 'referee', '--out', out,
                '--period-s', str(period_s)]
        if watch.machine_cgroup:
            argv += ['--machine-cgroup', watch.machine_cgroup]
        if watch.driver_state:
            argv += ['--driver-state', watch.driver_state]
        for pid in watch.ros_pids:
            argv += ['--ros-pid', str(pid)]
        if watch.server_pid:
            argv += ['--server-pid', str(watch.server_pid)]
        env = dict(os.environ)
        env['PYTHONPATH'] = BENCHMARKS_DIR  # the referee alone: never the product's package
        self.process = subprocess.Popen(argv, env=env, cwd=BENCHMARKS_DIR,
                                        stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline and not self._written():
            if self.process.poll() is not None:
                raise RuntimeError(f'referee exited with {self.process.returncode}')
            time.sleep(0.02)
        if not self._written():
            self.stop()
            raise RuntimeError(f'referee wrote no sample within {ready_timeout_s:.0f} s')

    def _written(self) -> bool:
        try:
            return os.path.getsize(self.out) > 0
        except OSError:
            return False

    def mark(self, label: str) -> float:
        """Write a named moment into the sample file; return its time."""
        t = time.monotonic()
        fd = os.open(self.out, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (json.dumps({'t': t, 'mark': label}) + '\n').encode())
        finally:
            os.close(fd)
        return t

    def samples(self) -> List[Sample]:
        """Return every sample so far."""
        return read_samples(self.out)

    def wait_next(self, timeout_s: float = 5.0) -> Optional[Sample]:
        """Wait for a sample taken after now; None when none came in time."""
        now = time.monotonic()
        deadline = now + timeout_s
        while time.monotonic() < deadline:
            later = [s for s in self.samples()[-5:] if s.t > now]
            if later:
                return later[0]
            time.sleep(self.period_s / 2)
        return None

    def stop(self) -> None:
        """End the process (SIGTERM, SIGKILL after 5 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> 'Referee':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Optional[List[str]] = None) -> int:
    """Sample until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog='referee', description=__doc__.splitlines()[1])
    parser.add_argument('--out', required=True)
    parser.add_argument('--period-s', type=float, default=0.05)
    parser.add_argument('--machine-cgroup', default='')
    parser.add_argument('--driver-state', default='')
    parser.add_argument('--ros-pid', type=int, action='append', default=[])
    parser.add_argument('--server-pid', type=int, default=0)
    args = parser.parse_args(argv)
    if not 0 < args.period_s <= 0.1:
        parser.error('--period-s must be in (0, 0.1]: the referee samples at 10 Hz or more')
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch = Watch(machine_cgroup=args.machine_cgroup, driver_state=args.driver_state,
                  ros_pids=tuple(args.ros_pid), server_pid=args.server_pid)
    run(watch, args.out, args.period_s, stop)
    return 0
