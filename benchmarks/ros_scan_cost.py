"""
Cost of one ROS process scan over a process table with a few hundred ROS-looking processes.

Starts real lightweight processes (dash reading a pipe): some with `--ros-args -r __node:=...`,
some whose program is named like a Nav2 server or a component container, some plain. Prints the
median time of a cold scan (every pid classified) and of the warm scans the monitor runs every
period (only memory re-read), next to what a naive psutil pass would cost. Target: warm < 50 ms.

Usage: python benchmarks/ros_scan_cost.py [--ros 300] [--plain 100] [--repeats 30]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowhound_llm_bench.adapters.ros_processes import RosProcessScanner  # noqa: E402

SHELL = '/bin/sh'
WAIT_FOREVER = 'read line'
NAV2_NAMES = ('controller_server', 'planner_server', 'bt_navigator', 'amcl', 'map_server')


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, processes):
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=_default_sigint)
    processes.append(proc)


def start_table(ros_count, plain_count, link_dir, processes):
    """Start the processes; every third ROS one is a Nav2-named program, some containers."""
    for name in NAV2_NAMES + ('component_container_isolated',):
        (link_dir / name).symlink_to(SHELL)
    for index in range(ros_count):
        if index % 3 == 0:
            program = str(link_dir / NAV2_NAMES[index % len(NAV2_NAMES)])
        elif index % 10 == 1:
            program = str(link_dir / 'component_container_isolated')
        else:
            program = SHELL
        start([program, '-c', WAIT_FOREVER, 'bench', '--ros-args', '-r',
               f'__node:=scan_cost_{index}', '-r', '__ns:=/scan_cost'], processes)
    for _ in range(plain_count):
        start([SHELL, '-c', WAIT_FOREVER, 'plain'], processes)


def stop_table(processes):
    for proc in processes:
        try:
            proc.stdin.close()
            os.killpg(proc.pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    for proc in processes:
        proc.wait(timeout=10)


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def naive_pass():
    """Scan the way a loop without the classification cache would."""
    total = 0
    for proc in psutil.process_iter(['pid', 'name', 'cmdline']):
        if '--ros-args' in (proc.info['cmdline'] or []):
            try:
                total += proc.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--ros', type=int, default=300, help='ROS-looking processes to start')
    parser.add_argument('--plain', type=int, default=100, help='other processes to start')
    parser.add_argument('--repeats', type=int, default=30)
    options = parser.parse_args()

    processes = []
    with tempfile.TemporaryDirectory(prefix='ros_scan_cost_') as tmp:
        try:
            start_table(options.ros, options.plain, Path(tmp), processes)
            time.sleep(1.0)  # let every shell reach its read
            table_size = len(psutil.pids())

            cold = []
            for _ in range(max(3, options.repeats // 5)):
                seconds, scan = timed(RosProcessScanner(settle_s=0.0).scan)
                cold.append(seconds)
            scanner = RosProcessScanner(settle_s=0.0)
            scanner.scan()
            warm = []
            for _ in range(options.repeats):
                seconds, scan = timed(scanner.scan)
                warm.append(seconds)
            naive = [timed(naive_pass)[0] for _ in range(max(3, options.repeats // 5))]
        finally:
            stop_table(processes)

    ours = sum(1 for p in scan.processes if p.identity.namespace == '/scan_cost')
    print(f'process table: {table_size} processes, {ours} of ours found as ROS '
          f'(of {options.ros} started), {len(scan.processes)} ROS in total')
    print(f'cold scan (classify every pid):   median {statistics.median(cold) * 1e3:7.1f} ms')
    print(f'warm scan (re-read memory only):  median {statistics.median(warm) * 1e3:7.1f} ms'
          f'   max {max(warm) * 1e3:7.1f} ms   (target < 50 ms)')
    print(f'naive psutil pass (full_info):    median {statistics.median(naive) * 1e3:7.1f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
