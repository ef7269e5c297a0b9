"""
The simulated machine's host-side process: a GPU driver, /proc/meminfo, drop_caches, nvidia-smi.

    python -m shadowhound_llm_bench.sim.machine_host --dir DIR --total-bytes N \
        [--cgroup /sys/fs/cgroup/memory/NAME] [--blobs-dir BLOBS] [--unified]

It runs in the machine's `driver` memory cgroup, beside (not inside) the Ollama container, and
models what published reports say a Jetson AGX Thor does:
- device memory (weights, KV cache, graph) is allocated by the GPU driver, not charged to the
  process that asked for it: each runner's allocation is a "context" process of this driver
  holding real pages in the driver's cgroup, so it lowers the machine's free memory but not the
  container's cgroup (rbonghi/jetson_stats PR #849: `NvMapMemUsed` is missing on Thor and
  `nvidia-smi --query-compute-apps` is the reliable per-process reading);
- when a runner exits its pages are not returned: the driver keeps them in a pool
  (NVIDIA's jetson-memory-audit guidance: the Thor driver keeps freed system-memory pages in a
  pool after a CUDA context exits, drop_caches being the workaround before JetPack 7.2;
  ollama/ollama #12528: `free -g` shows 64 GB used after `ollama ps` is empty, until caches
  are dropped); the pool belongs to the runner's client, the process that keeps the device
  open (the Ollama server, whose GPU discovery initialises CUDA in-process), and a new
  allocation of that client reuses it first;
- when that client exits (a container restart ends the server) the driver releases its pool:
  the seed's Thor measurement "Container memory after unload: 31GiB - only 1GB freed ...
  container restart clears this", its restart-large configuration with 0/5 failures, and
  ollama/ollama #10597 (memory held across unloads until the server is killed);
- writing 1/2/3 into DIR/drop_caches acts as the kernel's levels: 1 drops the page cache of the
  model blobs (posix_fadvise DONTNEED), 2 runs the shrinkers (the driver's releases its pool),
  3 both, as `echo 3 > /proc/sys/vm/drop_caches` does on Thor (ollama/ollama #12283);
- DIR/meminfo is the machine's /proc/meminfo, in this machine's (scaled) bytes, computed from the
  machine cgroup's real memory.stat and usage (no NvMapMemUsed, as on Thor), rewritten
  atomically at 20 Hz;
- DIR/nvidia-smi answers `--query-compute-apps=pid,process_name,used_memory
  --format=csv,noheader,nounits` from the driver's live contexts (MiB of this machine).
Without a machine cgroup (not root) the figures are emulated from process RSS and the blob bytes
read since the last drop; DIR/state says which (`accounting`).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional

from .nvidia_smi_standin import write_nvidia_smi
from .proc_files import (children, parent_pid, process_name, read_int, read_stat, rss_bytes,
                         set_oom_score_adj, start_time, write_atomically)

SOCKET_NAME = 'gpu.sock'
MEMINFO_NAME = 'meminfo'
DROP_CACHES_NAME = 'drop_caches'
NVIDIA_SMI_NAME = 'nvidia-smi'
STATE_NAME = 'state.json'
PID_NAME = 'host.pid'
PUBLISH_PERIOD_S = 0.05
KIB = 1024

# A context: holds `size` bytes of real pages until its stdin closes or it is killed.
CONTEXT_SOURCE = r'''
import mmap, sys
size = int(sys.argv[1])
for path, text in (('/proc/self/comm', sys.argv[2][:15]),
                   ('/proc/self/oom_score_adj', sys.argv[3])):
    try:
        with open(path, 'w') as f:
            f.write(text)
    except OSError:
        pass
page = mmap.PAGESIZE
n = max(page, size // page * page)
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for off in range(0, n, page):
    m[off] = 1
sys.stdout.write('R\n')
sys.stdout.flush()
sys.stdin.buffer.read(1)
'''


@dataclass
class Context:
    """Device memory of one runner (live) or pooled after its runner went away."""

    process: subprocess.Popen
    bytes: int
    owner_pid: int
    owner_name: str
    pooled: bool = False
    client_pid: int = 0  # the process holding the device open for the runner (its parent)
    client_start: str = ''  # that process's start time (a reused pid is another client)

    def client_gone(self) -> bool:
        """Tell whether the client that keeps this pool alive has exited."""
        return not self.client_pid or start_time(self.client_pid) != self.client_start

    def alive(self) -> bool:
        return self.process.poll() is None

    def release(self) -> None:
        try:
            if self.process.stdin:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def meminfo_text(fields_kib: Dict[str, int]) -> str:
    """Format fields (kB) the way /proc/meminfo does."""
    return ''.join(f'{key + ":":<16}{value:>8} kB\n' for key, value in fields_kib.items())


class MachineHost:
    """Driver contexts and pool, meminfo publisher and drop_caches watcher of one machine."""

    def __init__(self, *, folder: str, total_bytes: int, cgroup_dir: str, blobs_dir: str,
                 unified: bool) -> None:
        self.folder = folder
        self.total_bytes = total_bytes
        self.cgroup_dir = cgroup_dir
        self.blobs_dir = blobs_dir
        self.unified = unified
        self.lock = threading.Lock()
        self.contexts: List[Context] = []
        self.drops = 0
        self.drops_by_level: Dict[str, int] = {}
        self.emulated_cached: Dict[str, int] = {}  # blob path -> bytes read since the last drop
        self.member_pids: List[int] = []
        self.stopping = threading.Event()

    # ---- device memory ----------------------------------------------------------------------
    def allocate(self, owner_pid: int, name: str, size: int, oom_score_adj: int,
                 loaded_oom_score_adj: int = 0) -> Context:
        """
        Start a context holding size bytes; pooled pages are handed back first (reuse).

        While it allocates the context has the runner's oom_score_adj (1000 while loading: an
        OOM now fails this load); once it holds everything, loaded_oom_score_adj, and from then
        on the runner's (mirrored at every publish: raising is always allowed, lowering needs
        CAP_SYS_RESOURCE).
        """
        client = parent_pid(owner_pid)
        with self.lock:
            pooled = [c for c in self.contexts if c.pooled and c.client_pid == client]
            reused = 0
            for context in sorted(pooled, key=lambda c: c.bytes):
                if reused >= size:
                    break
                context.release()
                self.contexts.remove(context)
                reused += context.bytes
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, '-I', '-S', '-c', CONTEXT_SOURCE, str(int(size)),
             'nvgpu-ctx', str(int(oom_score_adj))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            close_fds=True)
        context = Context(process=process, bytes=size, owner_pid=owner_pid, owner_name=name,
                          client_pid=client, client_start=start_time(client) if client else '')
        with self.lock:
            self.contexts.append(context)
        line = process.stdout.readline() if process.stdout else b''
        if line.startswith(b'R'):
            set_oom_score_adj(process.pid, loaded_oom_score_adj)
        else:
            process.wait(timeout=10)
            with self.lock:
                if context in self.contexts:
                    self.contexts.remove(context)
        return context

    def to_pool(self, context: Context) -> None:
        """Keep a gone runner's pages held by the driver (unless the context is dead)."""
        with self.lock:
            if not context.alive():
                if context in self.contexts:
                    self.contexts.remove(context)
                return
            context.pooled = True
            # Driver memory: not a process the OOM killer can end.
            set_oom_score_adj(context.process.pid, -1000)

    @staticmethod
    def _mirror_oom_score_adj(context: Context) -> None:
        """Give a live context its runner's oom_score_adj (the OOM killer weighs them as one)."""
        try:
            with open(f'/proc/{context.owner_pid}/oom_score_adj', encoding='ascii') as handle:
                wanted = handle.read().strip()
            with open(f'/proc/{context.process.pid}/oom_score_adj', encoding='ascii') as handle:
                current = handle.read().strip()
        except OSError:
            return
        if wanted != current:
            set_oom_score_adj(context.process.pid, int(wanted))

    def contexts_state(self) -> List[Dict[str, object]]:
        """Return every context: its pid, its runner's, bytes, pooled, oom_score_adj."""
        result = []
        with self.lock:
            contexts = list(self.contexts)
        for context in contexts:
            try:
                with open(f'/proc/{context.process.pid}/oom_score_adj',
                          encoding='ascii') as handle:
                    adj = int(handle.read().strip())
            except (OSError, ValueError):
                continue
            result.append({'pid': context.process.pid, 'owner_pid': context.owner_pid,
                           'bytes': context.bytes, 'pooled': context.pooled,
                           'oom_score_adj': adj})
        return result

    def release_pool(self, only_orphaned: bool = False) -> int:
        """Release pooled contexts (only those whose client exited); return the bytes."""
        with self.lock:
            pooled = [c for c in self.contexts if c.pooled
                      and (not only_orphaned or c.client_gone())]
            for context in pooled:
                self.contexts.remove(context)
        for context in pooled:
            context.release()
        return sum(c.bytes for c in pooled)

    def drop_caches(self, level: int = 3) -> None:
        """
        Act as `echo level > /proc/sys/vm/drop_caches`.

        1 drops the page cache (the blobs'); 2 runs the shrinkers, the driver's among them,
        which release its pool; 3 does both (Documentation/admin-guide/sysctl/vm.rst).
        """
        if level & 2:
            self.release_pool()
        if level & 1 and self.blobs_dir and os.path.isdir(self.blobs_dir):
            for entry in os.scandir(self.blobs_dir):
                if entry.is_file():
                    try:
                        fd = os.open(entry.path, os.O_RDONLY)
                    except OSError:
                        continue
                    try:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    finally:
                        os.close(fd)
        with self.lock:
            self.drops += 1
            self.drops_by_level[str(level)] = self.drops_by_level.get(str(level), 0) + 1
            if level & 1:
                self.emulated_cached.clear()

    def apps(self) -> List[Dict[str, object]]:
        """Live contexts: the compute apps nvidia-smi lists."""
        with self.lock:
            return [{'pid': c.owner_pid, 'process_name': c.owner_name, 'used_memory': c.bytes}
                    for c in self.contexts if not c.pooled and c.alive()]

    def pool_bytes(self) -> int:
        """Bytes held in the driver's pool."""
        with self.lock:
            return sum(c.bytes for c in self.contexts if c.pooled and c.alive())

    # ---- socket -----------------------------------------------------------------------------
    def serve(self, path: str) -> None:
        """Accept runner connections until stopped."""
        try:
            os.unlink(path)
        except OSError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o666)
        server.listen(64)
        server.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()
        server.close()

    def _client(self, conn: socket.socket) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
        peer_pid = struct.unpack('3i', creds)[0]
        reader = conn.makefile('rb')
        try:
            line = reader.readline()
            request = json.loads(line or b'{}')
        except ValueError:
            conn.close()
            return
        op = request.get('op')
        if op == 'alloc':
            self._serve_alloc(conn, reader, peer_pid, request)
            return
        if op == 'apps':
            reply: object = self.apps()
        elif op == 'drop_caches':
            self.drop_caches(int(request.get('level', 3)))
            reply = {'ok': True}
        elif op == 'read':
            with self.lock:
                self.emulated_cached[str(request.get('path', ''))] = int(request.get('bytes', 0))
            reply = {'ok': True}
        elif op == 'join':
            with self.lock:
                self.member_pids.append(int(request.get('pid', peer_pid)))
            reply = {'ok': True}
        else:
            reply = {'error': f'unknown op {op!r}'}
        try:
            conn.sendall(json.dumps(reply).encode() + b'\n')
        finally:
            conn.close()

    def _serve_alloc(self, conn: socket.socket, reader: object, peer_pid: int,
                     request: Dict[str, object]) -> None:
        name = str(request.get('name') or process_name(peer_pid))
        context = self.allocate(peer_pid, name, int(request.get('bytes', 0)),
                                int(request.get('oom_score_adj', 0)),
                                int(request.get('loaded_oom_score_adj', 0)))
        try:
            if not context.alive():
                conn.sendall(b'{"ok": false, "error": "out of memory"}\n')
                return
            conn.sendall(b'{"ok": true}\n')
            # Hold until the runner goes (EOF) or the context is killed (then drop the runner).
            while context.alive():
                ready, _, _ = select.select([conn], [], [], 0.1)
                if ready:
                    try:
                        data = conn.recv(64)
                    except OSError:
                        data = b''
                    if not data:
                        self.to_pool(context)
                        return
            with self.lock:
                if context in self.contexts:
                    self.contexts.remove(context)
        finally:
            conn.close()

    # ---- readings ---------------------------------------------------------------------------
    def meminfo_fields(self) -> Dict[str, int]:
        """Return the machine's /proc/meminfo fields in kB."""
        total = self.total_bytes
        if self.cgroup_dir:
            stat = read_stat(os.path.join(self.cgroup_dir, 'memory.stat'))
            usage = read_int(os.path.join(self.cgroup_dir, 'memory.usage_in_bytes'))
            cached = stat.get('total_cache', 0)
            active_file = stat.get('total_active_file', 0)
            inactive_file = stat.get('total_inactive_file', 0)
            active_anon = stat.get('total_active_anon', 0)
            inactive_anon = stat.get('total_inactive_anon', 0)
            anon = stat.get('total_rss', 0)
            mapped = stat.get('total_mapped_file', 0)
            shmem = stat.get('total_shmem', 0)
        else:
            with self.lock:
                pids = [c.process.pid for c in self.contexts] + list(self.member_pids)
                cached = min(sum(self.emulated_cached.values()), total)
            anon = sum(rss_bytes(pid) + sum(rss_bytes(child) for child in children(pid))
                       for pid in pids)
            usage = anon + cached
            active_file, inactive_file = 0, cached
            active_anon, inactive_anon = anon, 0
            mapped = shmem = 0
        free = max(0, total - usage)
        # The kernel's MemAvailable: free plus the page cache it can reclaim (watermarks are
        # negligible at this scale).
        available = min(total, free + active_file + inactive_file)
        fields = {
            'MemTotal': total, 'MemFree': free, 'MemAvailable': available, 'Buffers': 0,
            'Cached': cached, 'SwapCached': 0,
            'Active': active_anon + active_file, 'Inactive': inactive_anon + inactive_file,
            'Active(anon)': active_anon, 'Inactive(anon)': inactive_anon,
            'Active(file)': active_file, 'Inactive(file)': inactive_file,
            'Unevictable': 0, 'Mlocked': 0, 'SwapTotal': 0, 'SwapFree': 0,
            'Dirty': 0, 'Writeback': 0, 'AnonPages': anon, 'Mapped': mapped, 'Shmem': shmem,
        }
        return {key: value // KIB for key, value in fields.items()}

    def publish(self) -> None:
        """Publish at PUBLISH_PERIOD_S until stopped."""
        while not self.stopping.is_set():
            self.publish_once()
            self.stopping.wait(PUBLISH_PERIOD_S)

    def publish_once(self) -> None:
        """Act on drop_caches, then rewrite meminfo and state atomically."""
        drop_path = os.path.join(self.folder, DROP_CACHES_NAME)
        try:
            with open(drop_path, encoding='ascii') as handle:
                request = handle.read().strip()
        except OSError:
            request = ''
        if request:
            with open(drop_path, 'w', encoding='ascii'):
                pass
            if request in ('1', '2', '3'):
                self.drop_caches(int(request))
        # The driver keeps a client's freed pages for that client until it closes the device:
        # a server that exited (a container restart) takes its pool with it.
        self.release_pool(only_orphaned=True)
        write_atomically(os.path.join(self.folder, MEMINFO_NAME),
                         meminfo_text(self.meminfo_fields()))
        with self.lock:
            live = [c for c in self.contexts if not c.pooled]
        for context in live:
            self._mirror_oom_score_adj(context)
        state = {
            'accounting': 'cgroup' if self.cgroup_dir else 'emulated',
            'memory_model': 'unified' if self.unified else 'cgroup_charged',
            'cgroup_dir': self.cgroup_dir, 'total_bytes': self.total_bytes,
            'device_bytes': sum(c.bytes for c in live), 'pool_bytes': self.pool_bytes(),
            'drop_caches_count': self.drops, 'drop_caches_by_level': dict(self.drops_by_level),
            'apps': self.apps(),
            'contexts': self.contexts_state(),
        }
        write_atomically(os.path.join(self.folder, STATE_NAME), json.dumps(state))

    def shutdown(self) -> None:
        """Release every context."""
        self.stopping.set()
        with self.lock:
            contexts = list(self.contexts)
            self.contexts.clear()
        for context in contexts:
            context.process.kill()
            context.process.wait(timeout=5)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the machine host until SIGTERM."""
    parser = argparse.ArgumentParser(prog='sim-machine-host', description=__doc__)
    parser.add_argument('--dir', required=True)
    parser.add_argument('--total-bytes', type=int, required=True)
    parser.add_argument('--cgroup', default='')
    parser.add_argument('--blobs-dir', default='')
    parser.add_argument('--unified', action='store_true')
    parser.add_argument('--member', type=int, action='append', default=[])
    args = parser.parse_args(argv)
    try:
        with open('/proc/self/oom_score_adj', 'w', encoding='ascii') as handle:
            handle.write('-1000')
    except OSError:
        pass
    host = MachineHost(folder=args.dir, total_bytes=args.total_bytes, cgroup_dir=args.cgroup,
                       blobs_dir=args.blobs_dir, unified=args.unified)
    host.member_pids.extend(args.member)
    write_atomically(os.path.join(args.dir, PID_NAME), f'{os.getpid()}\n')
    with open(os.path.join(args.dir, DROP_CACHES_NAME), 'a', encoding='ascii'):
        pass
    os.chmod(os.path.join(args.dir, DROP_CACHES_NAME), 0o666)
    write_nvidia_smi(args.dir)
    signal.signal(signal.SIGTERM, lambda *_: host.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: host.stopping.set())
    server = threading.Thread(target=host.serve, args=(os.path.join(args.dir, SOCKET_NAME),),
                              daemon=True)
    server.start()
    host.publish_once()  # meminfo and state exist before anyone is told the machine is ready
    print('machine ready', flush=True)
    try:
        host.publish()
    finally:
        host.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
