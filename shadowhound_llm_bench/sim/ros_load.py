"""
Stand up a scenario's ROS 2 / Nav2 memory load: one process per node, named like the node.

    python -m shadowhound_llm_bench.sim.ros_load --scenario thor   # until Ctrl-C / SIGTERM

Each process holds the node's scaled bytes and carries the node's name as its process name
(/proc/<pid>/comm, first 15 characters), so process-based ROS memory readings find it.
Given a simulated machine, the processes start in its `ros` memory cgroup (joined before exec,
so every page is charged there): they lower the machine's free memory and a kernel OOM in the
machine cgroup weighs them by oom_score like every other process of the robot.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Dict, List, Optional

from .machine import SimMachine
from .runner import RunnerProcess
from .scenario import load_scenario


class RosLoad:
    """Started stand-in processes of ROS nodes; stop() ends them all."""

    def __init__(self, runners: List[RunnerProcess]) -> None:
        self.runners = runners

    @property
    def pids(self) -> Dict[str, int]:
        """Node name to process id."""
        return {runner.model: runner.pid for runner in self.runners}

    def stop(self) -> None:
        """End every stand-in process."""
        for runner in self.runners:
            runner.stop(timeout_s=5.0)

    def __enter__(self) -> 'RosLoad':
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_ros_load(*, scenario: str, timeout_s: float = 30.0,
                   machine: Optional[SimMachine] = None) -> RosLoad:
    """Start one memory-holding process per ROS node of the scenario and wait until all hold."""
    sim_scenario = load_scenario(scenario)
    runners: List[RunnerProcess] = []
    procs = ''
    if machine is not None and machine.cgroup_dir:
        procs = machine.sub_cgroup('ros') + '/cgroup.procs'
    try:
        for node in sim_scenario.ros_nodes:
            runner = RunnerProcess(model=node.name, name=node.name, load_wall_s=0.0,
                                   resident_bytes=sim_scenario.physical_bytes(node.bytes),
                                   cgroup_procs=procs, oom_score_adj=None)
            if machine is not None and not procs:
                machine.join(runner.pid, 'ros')
            runners.append(runner)
            if runner.wait_ready(timeout_s=timeout_s) is not None:
                raise RuntimeError(f'stand-in for {node.name} died while allocating')
    except BaseException:
        RosLoad(runners).stop()
        raise
    return RosLoad(runners)


def main(argv: Optional[List[str]] = None) -> int:
    """Hold the scenario's ROS load until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog='sim-ros-load', description=__doc__)
    parser.add_argument('--scenario', default='thor')
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with start_ros_load(scenario=args.scenario) as load:
        for name, pid in load.pids.items():
            print(f'{name} pid={pid}', flush=True)
        done.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
