"""
Peak memory of the Ollama client and of the node under compressed and oversized hostile replies.

Run: .venv/bin/python benchmarks/hostile_replies.py [--part client|node|all] [--code DIR]
The node's idle RSS is taken after a first goal against a well-formed server (reports drawn,
every module loaded); its peak during a second goal that meets the hostile reply.
Per reply kind a fresh client process makes one call against a hostile server; it prints its
idle RSS (after a first call: every module loaded), its peak RSS during the hostile call (the
kernel's high-water mark, reset before the call: short spikes count) and the ratio (target:
under 1.5), with the call's outcome and duration. --code runs the client of another checkout
(e.g. the main branch) for a before/after table. --part node launches the llm_bench node
against a hostile server and sends one goal per kind, measuring the node process the same way.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'test'))
sys.path.insert(0, str(REPO / 'test' / 'hostile'))

from hostile_ollama import (  # noqa: E402
    HostileServer, Reply, endless_bytes, gzip_bomb, gzip_reply, line)

MIB = 1024 * 1024
TARGET_RATIO = 1.5


def _token_lines(total: int) -> bytes:
    """Return valid NDJSON token lines, gzipped: about total bytes once decoded."""
    token = line({'model': 'm', 'response': 'y', 'done': False})
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = token * (MIB // len(token))
    parts = [comp.compress(block) for _ in range(total // len(block))]
    return b''.join(parts) + comp.flush()


def kinds() -> Dict[str, Tuple[str, Callable[[], Reply]]]:
    """Reply kind -> (endpoint called, reply). Built lazily: some take seconds to compress."""
    ndjson = 'application/x-ndjson'
    return {
        'ps gzip,gzip <2 KB (512 MiB inside)': (
            'ps', lambda: gzip_reply(gzip_bomb(512 * MIB, layers=2), encoding='gzip, gzip')),
        'ps gzip 400 KB (420 MiB inside)': (
            'ps', lambda: gzip_reply(gzip_bomb(420 * MIB), chunked=True)),
        'ps gzip x3 ~1.8 KB (2 GiB inside)': (
            'ps', lambda: gzip_reply(gzip_bomb(2048 * MIB, layers=3),
                                     encoding='gzip, gzip, gzip')),
        'ps gzip in one layer, gzip inside': (
            'ps', lambda: gzip_reply(gzip_bomb(512 * MIB, layers=2))),
        'ps 500 gzip 400 KB error body': (
            'ps', lambda: gzip_reply(gzip_bomb(420 * MIB), status=500)),
        'stream gzip 400 KB of zeros': (
            'stream', lambda: gzip_reply(gzip_bomb(420 * MIB), chunked=True,
                                         content_type=ndjson)),
        'stream gzip token lines (400 MiB)': (
            'stream', lambda: gzip_reply(_token_lines(400 * MIB), chunked=True,
                                         content_type=ndjson)),
        'ps plain endless body': (
            'ps', lambda: Reply(pieces=endless_bytes, content_type='application/json')),
        'ps gzip valid (a proxy)': (
            'ps', lambda: gzip_reply(gzip.compress(json.dumps({'models': []}).encode()))),
    }


CLIENT_CHILD = r'''
import re, sys, time
from shadowhound_llm_bench.adapters.ollama_client import OllamaClient, OllamaError

def status(field):
    text = open("/proc/self/status").read()
    return int(re.search(field + r":\s+(\d+) kB", text).group(1)) * 1024

url, endpoint = sys.argv[1], sys.argv[2]
with OllamaClient(base_url=url, request_timeout_s=5.0) as client:
    client.version()
    time.sleep(0.2)
    idle = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the high-water mark starts again from now
    started = time.monotonic()
    try:
        if endpoint == "stream":
            client.generate_stream("m", "p", deadline_s=5.0)
        else:
            client.ps()
        outcome = "answered"
    except OllamaError as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:110]
    except Exception as exc:
        outcome = "CRASH " + type(exc).__name__ + ": " + str(exc)[:100]
    seconds = time.monotonic() - started
    print(idle, status("VmHWM"), round(seconds, 2), outcome, flush=True)
'''


class SwitchingServer(HostileServer):
    """Answers /api/version plainly and every other path with the current hostile reply."""

    def __init__(self) -> None:
        data = json.dumps({'version': '0.12.6'}).encode()
        self.plain = Reply(pieces=lambda: [data], content_length=len(data),
                           content_type='application/json')
        super().__init__(self.plain)
        self.current = self.plain

    def reply_for(self, method: str, path: str, body: bytes) -> Reply:
        return self.plain if path == '/api/version' else self.current


def client_table(code: Path) -> List[Dict[str, Any]]:
    """One fresh client process per kind; idle and peak RSS of each."""
    rows = []
    with SwitchingServer() as server:
        for name, (endpoint, build) in kinds().items():
            server.current = build()
            proc = subprocess.run(
                [sys.executable, '-c', CLIENT_CHILD, server.url, endpoint],
                capture_output=True, text=True, timeout=300, cwd=str(code),
                env=dict(os.environ, PYTHONPATH=str(code)))
            fields = (proc.stdout.strip() or '0 0 0 no answer').split(' ', 3)
            if proc.returncode != 0:
                fields[3] = f'child exited {proc.returncode}: {proc.stderr.strip()[-120:]}'
            idle, peak = int(fields[0]), int(fields[1])
            rows.append({'kind': name, 'idle': idle, 'peak': peak, 'seconds': fields[2],
                         'outcome': fields[3]})
    return rows


def print_rows(title: str, rows: List[Dict[str, Any]]) -> int:
    print(f'\n{title}')
    print('| reply kind | idle RSS MiB | peak RSS MiB | peak/idle | s | outcome |')
    print('|---|---|---|---|---|---|')
    over = 0
    for row in rows:
        ratio = row['peak'] / row['idle'] if row['idle'] else float('inf')
        over += ratio >= TARGET_RATIO
        print(f"| {row['kind']} | {row['idle'] / MIB:.1f} | {row['peak'] / MIB:.1f} | "
              f"{ratio:.2f} | {row['seconds']} | {row['outcome']} |")
    return over


# ---------------------------------------------------------------- the node as a process
def _node_kinds() -> Dict[str, Tuple[str, Callable[[], Reply]]]:
    chosen = ('ps gzip,gzip <2 KB (512 MiB inside)', 'ps gzip 400 KB (420 MiB inside)',
              'stream gzip 400 KB of zeros', 'stream gzip token lines (400 MiB)')
    every = kinds()
    return {name: every[name] for name in chosen}


def node_table() -> List[Dict[str, Any]]:
    """Launch the node per kind against a server whose metadata or streams are hostile."""
    from fuzz_long import NODE_PARAMS, NodeFacingServer
    from support.ros_nodes import NodeProcess, RosTestClient, child_env

    shift = int(os.environ.get('SHB_TEST_DOMAIN_SHIFT', '0'))
    os.environ['ROS_DOMAIN_ID'] = str((96 + shift) % 232)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    rows = []
    for name, (endpoint, build) in _node_kinds().items():
        hostile = build()

        class Server(NodeFacingServer):
            hostile_on = False

            def reply_for(self, method: str, path: str, body: bytes) -> Reply:
                prompt = path == '/api/generate' and json.loads(body or b'{}').get('prompt')
                if not self.hostile_on:
                    return _benign_stream() if prompt else super().reply_for(method, path, body)
                if endpoint == 'ps' and path in ('/api/ps', '/api/show'):
                    self.served += 1
                    return hostile
                if endpoint == 'stream' and prompt:
                    self.served += 1
                    return hostile
                return super().reply_for(method, path, body)

        with tempfile.TemporaryDirectory() as folder, Server() as server:
            server.served = 0
            params = dict(NODE_PARAMS, ollama_host=server.url, results_dir=f'{folder}/results')
            node = NodeProcess.launch(params=params, log_path=Path(folder) / 'node.log',
                                      env=child_env(ROS_DOMAIN_ID=os.environ['ROS_DOMAIN_ID']))
            client = None
            try:
                node.wait_ready(90.0)
                client = RosTestClient('hostile_replies_client')
                # A first goal against a well-formed server: reports drawn, every module loaded.
                warm = client.send(models=['qwen2.5:0.5b'], repetitions=1)
                client.result(warm, timeout_s=300.0)
                time.sleep(2.0)
                status = Path(f'/proc/{node.process.pid}/status')
                idle = _proc_field(status, 'VmRSS')
                Path(f'/proc/{node.process.pid}/clear_refs').write_text('5')
                server.hostile_on = True
                started = time.monotonic()
                handle = client.send(models=['qwen2.5:0.5b'], repetitions=1)
                result = client.result(handle, timeout_s=300.0).result
                peak = _proc_field(status, 'VmHWM')
                reasons = '; '.join(m.reason for m in result.models)[:110]
                rows.append({'kind': name, 'idle': idle, 'peak': peak,
                             'seconds': f'{time.monotonic() - started:.1f}',
                             'outcome': f'{result.status} after {server.served} hostile '
                                        f'replies: {reasons or result.error_msg[:110]}'})
            finally:
                if client is not None:
                    client.close()
                node.stop()
    return rows


def _benign_stream() -> Reply:
    tokens = b''.join(line({'model': 'qwen2.5:0.5b', 'response': w, 'done': False})
                      for w in ('The ', 'robot ', 'is ', 'ready.'))
    final = line({'model': 'qwen2.5:0.5b', 'response': '', 'done': True,
                  'done_reason': 'stop', 'total_duration': 400_000_000,
                  'load_duration': 10_000_000, 'prompt_eval_count': 12,
                  'prompt_eval_duration': 50_000_000, 'eval_count': 4,
                  'eval_duration': 200_000_000})
    return Reply(pieces=lambda: [tokens, final])


def _proc_field(status: Path, field: str) -> int:
    for text in status.read_text().splitlines():
        if text.startswith(field + ':'):
            return int(text.split()[1]) * 1024
    raise RuntimeError(f'no {field} in {status}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--part', choices=('client', 'node', 'all'), default='client')
    parser.add_argument('--code', default=str(REPO),
                        help='checkout whose client is measured (default: this one)')
    args = parser.parse_args()
    over = 0
    if args.part in ('client', 'all'):
        over += print_rows(f'Ollama client ({args.code}), one process per reply kind:',
                           client_table(Path(args.code)))
    if args.part in ('node', 'all'):
        over += print_rows('llm_bench node as a process, one goal per kind:', node_table())
    print(f'\nkinds at or over {TARGET_RATIO}x idle: {over}')
    return 1 if over else 0


if __name__ == '__main__':
    sys.exit(main())
