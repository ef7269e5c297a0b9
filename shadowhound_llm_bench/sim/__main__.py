"""Command line of the Ollama simulator: `ollama_sim --scenario thor --port 11434`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import List, Optional

from .faults import FaultError, Faults
from .memory_limit import choose_limit_mode
from .scenario import ScenarioError, load_scenario
from .scheduler import Scheduler
from .server import SimServer
from .tasks import SuiteKnowledge

READY_PREFIX = 'ollama_sim listening on '


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the simulator."""
    parser = argparse.ArgumentParser(prog='ollama_sim', description=__doc__)
    parser.add_argument('--scenario', default='small',
                        help='scenario name under config/scenarios, or a YAML path')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=11434, help='0 picks a free port')
    parser.add_argument('--faults', default='',
                        help='JSON object of faults added to the scenario ones')
    parser.add_argument('--limit-mode', default='auto', choices=['auto', 'cgroup', 'emulated'],
                        help='who enforces the container limit: the kernel or the simulator')
    parser.add_argument('--machine-dir', default='',
                        help='folder of the simulated machine (meminfo, GPU driver socket)')
    parser.add_argument('--blobs-dir', default='',
                        help='folder of the model blob files runners read while loading')
    parser.add_argument('--join-cgroup', default='',
                        help='memory cgroup folder to move this process into first')
    parser.add_argument('--quiet', action='store_true', help='no request log on stderr')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the simulator until SIGTERM or SIGINT."""
    args = build_parser().parse_args(argv)
    if args.join_cgroup:
        try:
            with open(os.path.join(args.join_cgroup, 'cgroup.procs'), 'w',
                      encoding='ascii') as handle:
                handle.write(str(os.getpid()))
        except OSError as exc:
            print(f'ollama_sim: cannot join cgroup {args.join_cgroup}: {exc}', file=sys.stderr)
            return 2
    try:
        scenario = load_scenario(args.scenario)
        faults = Faults(scenario.faults)
        if args.faults:
            faults.update(json.loads(args.faults))
    except (ScenarioError, FaultError, ValueError) as exc:
        print(f'ollama_sim: {exc}', file=sys.stderr)
        return 2
    mode = choose_limit_mode(args.limit_mode, scenario.container_limit_physical_bytes)
    scheduler = Scheduler(scenario=scenario, faults=faults, limit_mode=mode,
                          machine_dir=args.machine_dir, blobs_dir=args.blobs_dir)
    try:
        server = SimServer((args.host, args.port), scenario=scenario, faults=faults,
                           scheduler=scheduler, knowledge=SuiteKnowledge(),
                           log_requests=not args.quiet)
    except OSError as exc:
        scheduler.shutdown()
        print(f'ollama_sim: cannot listen on {args.host}:{args.port}: {exc}', file=sys.stderr)
        return 1

    def stop(signum: int, _frame: object) -> None:
        scheduler.shutdown()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f'{READY_PREFIX}http://{host}:{port} pid={os.getpid()} scenario={scenario.name} '
          f'limit_mode={mode} memory_model={scenario.memory_model}', flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        scheduler.shutdown()
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
