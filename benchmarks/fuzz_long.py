"""
The long fuzz run: hostile goals, files, parameters and Ollama replies, and memory under them.

Run: .venv/bin/python benchmarks/fuzz_long.py [--examples 2000] [--client-examples 300]
     [--part all|fuzz|client|node]
Prints, per input kind, the examples tried, how many were accepted or refused, and the defects
(crashes, hangs over the deadline, file content echoed, unsafe messages or bytes out, memory
over the bound; target 0 each) with the process's RSS before and its peak during the kind (the
kinds: goals, suites, scenarios, parameters, params files, Ollama replies, encoded (gzip,
stacked, chunked) replies, crafted history databases, crafted run folders); then the
peak RSS of an Ollama client process and of the llm_bench node under a hostile server against
their idle RSS (target: under 2x). The same targets run in CI with a small budget
(test/hostile/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'test'))
sys.path.insert(0, str(REPO / 'test' / 'hostile'))

import psutil  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

import fuzz_targets as targets  # noqa: E402
import fuzz_targets_compressed as compressed  # noqa: E402
import fuzz_targets_history as history  # noqa: E402
from hostile_ollama import (  # noqa: E402
    GIB, HostileServer, Reply, endless_bytes, endless_tokens, huge_stream, line)

MIB = 1024 * 1024
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), 'shadowhound-hypothesis'))


# ---------------------------------------------------------------- fuzzing
def run_kind(name: str, strategy: Any, check: Callable[[Any], Any], examples: int) -> Dict:
    """Run one kind for `examples` examples; count labels, keep the first defect of each."""
    counts: collections.Counter = collections.Counter()
    first: Dict[str, str] = {}

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(example=strategy)
    def body(example: Any) -> None:
        outcome = check(example)
        counts[outcome.label] += 1
        if outcome.defect and outcome.label not in first:
            first[outcome.label] = outcome.detail

    idle = _status_bytes('VmRSS')
    Path('/proc/self/clear_refs').write_text('5')  # the high-water mark starts again here
    started = time.monotonic()
    body()
    return {'kind': name, 'counts': counts, 'first': first,
            'seconds': time.monotonic() - started, 'idle_rss': idle,
            'peak_rss': _status_bytes('VmHWM')}


def _status_bytes(field: str) -> int:
    for text in Path('/proc/self/status').read_text().splitlines():
        if text.startswith(field + ':'):
            return int(text.split()[1]) * 1024
    return 0


def fuzz(examples: int, client_examples: int) -> List[Dict]:
    rows = [
        run_kind('goal', targets.goal_requests(), targets.check_goal, examples),
        run_kind('suite data', targets.mutated(targets.suite_document()),
                 targets.check_suite_data, examples),
        run_kind('suite file', targets.suite_file_texts(), targets.check_suite_file, examples),
        run_kind('scenario', targets.mutated(targets.scenario_document()),
                 targets.check_scenario, examples),
        run_kind('parameters', targets.parameter_changes(), targets.check_parameters, examples),
        run_kind('params file', targets.suite_file_texts(), targets.check_params_file,
                 examples // 2),
    ]
    with targets.ClientTarget() as client:
        rows.append(run_kind('ollama reply', targets.hostile_replies(), client.check,
                             client_examples))
        rows.append(run_kind('encoded reply', compressed.encoded_replies(),
                             lambda example: compressed.check_encoded(client.server, example),
                             client_examples))
    rows.append(run_kind('history database', history.crafted_databases(),
                         history.check_database, max(1, examples // 10)))
    rows.append(run_kind('run folders', history.crafted_run_folders(),
                         history.check_run_folders, max(1, examples // 40)))
    return rows


def print_fuzz(rows: List[Dict]) -> int:
    print('| input kind | examples | accepted | refused | crashes | hangs | echoed | unsafe '
          '| memory | seconds | RSS before MiB | peak RSS MiB |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    defects = 0
    for row in rows:
        c = row['counts']
        total = sum(c.values())
        defects += sum(c[label] for label in targets.DEFECTS)
        print(f"| {row['kind']} | {total} | {c['accepted']} | {c['refused']} | {c['crash']} | "
              f"{c['hang']} | {c['echo']} | {c['unsafe']} | {c['memory']} | "
              f"{row['seconds']:.1f} | {row['idle_rss'] / MIB:.0f} | "
              f"{row['peak_rss'] / MIB:.0f} |")
        for label, detail in row['first'].items():
            print(f"    first {label}: {detail}")
    return defects


# ---------------------------------------------------------------- client RSS
CLIENT_CHILD = r'''
import sys, time
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient, OllamaError
url = sys.argv[1]
with OllamaClient(base_url=url, request_timeout_s=3.0) as client:
    client.version()  # warm: every module and the connection pool in place
    print("idle", flush=True)
    time.sleep(1.0)
    print("go", flush=True)
    for endpoint in sys.argv[2:]:
        sys.stdin.readline()  # the server serves this mode now
        try:
            if endpoint.startswith("stream"):
                client.generate_stream("m", "p", deadline_s=3.0)
            else:
                client.tags()
        except OllamaError as exc:
            print(endpoint, type(exc).__name__, str(exc)[:80], flush=True)
    print("done", flush=True)
'''

MODES = {
    'stream-endless-tokens': Reply(pieces=endless_tokens),
    'stream-5GiB': Reply(pieces=lambda: huge_stream(5 * GIB)),
    'stream-endless-line': Reply(pieces=endless_bytes),
    'stream-slow-drip': Reply(pieces=lambda: endless_bytes(b'{'), delay_s=0.01),
    'stream-nan': Reply(pieces=lambda: [line({'response': 'x', 'done': True,
                                              'eval_count': float('nan')})]),
    'body-claims-5GiB': Reply(pieces=endless_bytes, content_length=5 * GIB,
                              content_type='application/json'),
    'body-endless': Reply(pieces=endless_bytes, content_type='application/json'),
    'body-invalid-json': Reply(pieces=lambda: [b'{"models": [' * 1000],
                               content_type='application/json'),
}


def _sample_peak(pid: int, stop: threading.Event, period_s: float = 0.02) -> List[int]:
    peak = [0]
    process = psutil.Process(pid)

    def loop() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(period_s)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return peak


def client_rss() -> Dict[str, Any]:
    """Idle and peak RSS of a client process run through every hostile mode."""
    version = json.dumps({'version': '0.33.0'}).encode()
    plain = Reply(pieces=lambda: [version], content_length=len(version),
                  content_type='application/json')

    class Server(HostileServer):
        def reply_for(self, method, path, body):
            return self.current

    server = Server(plain)
    server.current = plain
    results: Dict[str, Any] = {'modes': []}
    with server:
        child = subprocess.Popen(
            [sys.executable, '-c', CLIENT_CHILD, server.url, *MODES],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO),
            env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            assert child.stdout.readline().strip() == 'idle'
            idle = [psutil.Process(child.pid).memory_info().rss]
            for _ in range(10):
                time.sleep(0.05)
                idle.append(psutil.Process(child.pid).memory_info().rss)
            assert child.stdout.readline().strip() == 'go'
            stop = threading.Event()
            peak = _sample_peak(child.pid, stop)
            for mode in MODES:
                server.current = MODES[mode]
                started = time.monotonic()
                child.stdin.write('next\n')
                child.stdin.flush()
                answer = child.stdout.readline().strip()
                results['modes'].append((mode, time.monotonic() - started, answer))
                server.current = plain
            child.stdout.readline()
            stop.set()
        finally:
            child.kill()
            child.wait(timeout=10)
    results['idle_rss'] = max(idle)
    results['peak_rss'] = peak[0]
    return results


# ---------------------------------------------------------------- node RSS
NODE_PARAMS = {
    'container.backend': 'api_only', 'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0, 'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125, 'policy.safety_buffer_gib': 0.015625,
    'benchmark.num_predict': 16, 'benchmark.pull_missing': False, 'benchmark.warmup': False,
    'request_timeout_s': 4.0, 'publish_rate_hz': 2.0, 'sample_period_s': 0.5,
}


class NodeFacingServer(HostileServer):
    """A well-formed Ollama for metadata and loads; every measured request a hostile mode."""

    def __init__(self) -> None:
        super().__init__(Reply(pieces=lambda: [b'{}']))
        self.cycle = [MODES[m] for m in MODES if m.startswith('stream')]
        self.served = 0

    @staticmethod
    def _json(obj: Any) -> Reply:
        data = json.dumps(obj).encode()
        return Reply(pieces=lambda: [data], content_length=len(data),
                     content_type='application/json')

    def reply_for(self, method: str, path: str, body: bytes) -> Reply:
        model = {'name': 'qwen2.5:0.5b', 'model': 'qwen2.5:0.5b', 'size': 4 * MIB,
                 'digest': 'd' * 64, 'details': {'parameter_size': '0.5B',
                                                 'quantization_level': 'Q4_K_M'}}
        if path == '/api/version':
            return self._json({'version': '0.33.0'})
        if path == '/api/tags':
            return self._json({'models': [model]})
        if path == '/api/ps':
            return self._json({'models': []})
        if path == '/api/show':
            return self._json({'details': model['details'], 'model_info': {}})
        request = json.loads(body or b'{}')
        if not request.get('prompt'):
            return self._json({'model': 'qwen2.5:0.5b', 'done': True,
                               'done_reason': 'unload' if request.get('keep_alive') == 0
                               else 'load'})
        reply = self.cycle[self.served % len(self.cycle)]
        self.served += 1
        return reply


def node_rss(repetitions: int) -> Dict[str, Any]:
    """Idle and peak RSS of the llm_bench node while one goal meets only hostile streams."""
    from support.ros_nodes import NodeProcess, RosTestClient, child_env

    shift = int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))
    os.environ['ROS_DOMAIN_ID'] = str((95 + shift) % 232)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    results: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, NodeFacingServer() as server:
        params = dict(NODE_PARAMS, ollama_host=server.url, results_dir=f'{folder}/results')
        node = NodeProcess.launch(params=params, log_path=Path(folder) / 'node.log',
                                  env=child_env(ROS_DOMAIN_ID=os.environ['ROS_DOMAIN_ID']))
        client = None
        try:
            node.wait_ready(60.0)
            time.sleep(2.0)
            process = psutil.Process(node.process.pid)
            idle = []
            for _ in range(20):
                idle.append(process.memory_info().rss)
                time.sleep(0.05)
            client = RosTestClient('fuzz_long_client')
            stop = threading.Event()
            peak = _sample_peak(node.process.pid, stop)
            started = time.monotonic()
            handle = client.send(models=['qwen2.5:0.5b'], repetitions=repetitions)
            if not handle.accepted:
                raise RuntimeError(f'the node rejected the goal; its log:\n{node.log()[-2000:]}')
            result = client.result(handle, timeout_s=600.0).result
            stop.set()
            results.update(idle_rss=max(idle), peak_rss=peak[0],
                           seconds=time.monotonic() - started, status=result.status,
                           hostile_requests=server.served, summary=result.summary,
                           reasons=[m.reason for m in result.models])
        finally:
            if client is not None:
                client.close()
            node.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--examples', type=int, default=2000, help='examples per input kind')
    parser.add_argument('--client-examples', type=int, default=300,
                        help='examples against the hostile server (each a real request)')
    parser.add_argument('--node-repetitions', type=int, default=2,
                        help='repetitions of the goal sent to the node (3 requests each)')
    parser.add_argument('--part', choices=('all', 'fuzz', 'client', 'node'), default='all')
    args = parser.parse_args()
    defects = 0
    if args.part in ('all', 'fuzz'):
        defects += print_fuzz(fuzz(args.examples, args.client_examples))
    if args.part in ('all', 'client'):
        c = client_rss()
        print('\nOllama client process under a hostile server (default ReplyLimits):')
        for mode, seconds, answer in c['modes']:
            print(f'  {mode:<24} {seconds:5.2f} s  {answer}')
        ratio = c['peak_rss'] / c['idle_rss']
        print(f"  idle RSS {c['idle_rss'] / MIB:.1f} MiB, peak RSS {c['peak_rss'] / MIB:.1f} "
              f"MiB, peak/idle {ratio:.2f} (target < 2)")
        defects += ratio >= 2.0
    if args.part in ('all', 'node'):
        n = node_rss(args.node_repetitions)
        ratio = n['peak_rss'] / n['idle_rss']
        print('\nllm_bench node, one goal whose every measured request meets a hostile stream:')
        print(f"  {n['hostile_requests']} hostile requests in {n['seconds']:.1f} s, run "
              f"{n['status']}; reasons: {n['reasons']}; {n['summary']}")
        defects += n['hostile_requests'] == 0  # no measurement: the run never met the server
        print(f"  idle RSS {n['idle_rss'] / MIB:.1f} MiB, peak RSS {n['peak_rss'] / MIB:.1f} "
              f"MiB, peak/idle {ratio:.2f} (target < 2)")
        defects += ratio >= 2.0
    print(f'\ndefects: {defects}')
    return 1 if defects else 0


if __name__ == '__main__':
    sys.exit(main())
