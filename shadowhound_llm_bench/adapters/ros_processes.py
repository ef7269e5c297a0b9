"""ROS 2 / Nav2 processes on this host and the memory each holds (PSS, else RSS), via psutil."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, Optional, Tuple

import psutil

from ..core.memory.ros_process_match import ProcessPatterns, RosProcessIdentity, classify_process
from ..core.memory.ros_reserve import RosProcessMemory, RosReserveSettings

_CONTAINER_ID = re.compile(r'^[0-9a-f]{12,64}$')
_PSS_LINE = re.compile(rb'^Pss:\s+(\d+) kB', re.MULTILINE)


class RosProcessScanError(RuntimeError):
    """The process table itself could not be read (not raised for single processes)."""


@dataclass(frozen=True)
class RosProcessScan:
    """ROS processes found in one pass over the process table."""

    processes: Tuple[RosProcessMemory, ...]
    scan_s: float  # wall time the pass took

    @property
    def live_bytes(self) -> int:
        """Memory of all ROS processes together."""
        return sum(process.memory_bytes for process in self.processes)


@dataclass
class _Entry:
    """What is known about one pid: its command line does not change, so it is read once."""

    identity: Optional[RosProcessIdentity]
    create_time_s: float
    settled: bool  # classified after the process was old enough to have finished any exec
    excluded: Optional[bool] = None  # None: not decided yet (only decided for ROS processes)
    process: Optional[psutil.Process] = None


class RosProcessScanner:
    """
    Finds ROS 2 / Nav2 processes and reads their memory; one cheap pass per scan().

    Classification is cached per pid; a pid that leaves the table is forgotten, so a reused pid is
    classified afresh unless it is reused within a single scan period. Processes younger than
    `settle_s` are classified again on every scan because wrappers exec into the real node.
    """

    def __init__(
        self,
        *,
        patterns: ProcessPatterns = ProcessPatterns(),
        exclude_pids: Iterable[int] = (),
        exclude_container_ids: Iterable[str] = (),
        exclude_self: bool = True,
        settle_s: float = 5.0,
        proc_root: str = '/proc',
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._patterns = patterns
        self._exclude_self = exclude_self
        self._settle_s = settle_s
        self._proc_root = proc_root
        self._clock = clock
        self._entries: Dict[int, _Entry] = {}
        self._exclude_pids: FrozenSet[int] = frozenset()
        self._exclude_container_ids: Tuple[str, ...] = ()
        self._pss_readable = True
        self.set_exclusions(pids=exclude_pids, container_ids=exclude_container_ids)

    def set_exclusions(
        self, *, pids: Iterable[int] = (), container_ids: Iterable[str] = ()
    ) -> None:
        """Replace the pids and container ids whose processes never count (e.g. Ollama's)."""
        pid_set = frozenset(int(pid) for pid in pids)
        ids = tuple(str(cid).strip().lower() for cid in container_ids)
        for cid in ids:
            if not _CONTAINER_ID.match(cid):
                raise ValueError(
                    f'container id {cid!r} is not a Docker container id (12 to 64 hex '
                    'digits); pass container.id, not the container name')
        self._exclude_pids = pid_set
        self._exclude_container_ids = ids
        for entry in self._entries.values():
            entry.excluded = None

    def scan(self) -> RosProcessScan:
        """Every ROS process now running with its memory; vanished or hidden ones are skipped."""
        started = time.perf_counter()
        try:
            pids = psutil.pids()
        except OSError as error:
            raise RosProcessScanError(f'cannot list processes: {error}') from error
        now_s = self._clock()
        own_pid = os.getpid() if self._exclude_self else -1
        alive = set(pids)
        for gone in [pid for pid in self._entries if pid not in alive]:
            del self._entries[gone]

        found = []
        for pid in pids:
            entry = self._entries.get(pid)
            if entry is None or not entry.settled:
                entry = self._classify(pid, now_s)
                if entry is None:
                    continue
                self._entries[pid] = entry
            if entry.identity is None or pid == own_pid:
                continue
            if entry.excluded is None:
                entry.excluded = self._is_excluded(pid)
            if entry.excluded:
                continue
            memory = self._read_memory(pid, entry)
            if memory is None:
                continue
            memory_bytes, proportional = memory
            found.append(RosProcessMemory(
                pid=pid, identity=entry.identity, memory_bytes=memory_bytes,
                proportional=proportional))
        return RosProcessScan(processes=tuple(found), scan_s=time.perf_counter() - started)

    def _classify(self, pid: int, now_s: float) -> Optional[_Entry]:
        try:
            process = psutil.Process(pid)
            create_time_s = process.create_time()  # read once by the constructor
            cmdline = process.cmdline()
            # The program name comes from the command line; only kernel threads need comm.
            name = cmdline[0].rsplit('/', 1)[-1] if cmdline else process.name()
        except psutil.NoSuchProcess:
            if not psutil.pid_exists(pid):
                return None
            # A zombie: it holds no memory worth reserving; remember it as not ROS.
            return _Entry(identity=None, create_time_s=0.0, settled=True)
        except psutil.AccessDenied:
            return _Entry(identity=None, create_time_s=0.0, settled=True)
        identity = classify_process(name, cmdline, self._patterns)
        settled = now_s - create_time_s >= self._settle_s
        return _Entry(
            identity=identity, create_time_s=create_time_s, settled=settled,
            process=process if identity is not None else None)

    def _is_excluded(self, pid: int) -> bool:
        if pid in self._exclude_pids:
            return True
        if not self._exclude_container_ids:
            return False
        try:
            with open(f'{self._proc_root}/{pid}/cgroup', 'r') as cgroup_file:
                cgroups = cgroup_file.read()
        except OSError:
            return False
        return any(cid in cgroups for cid in self._exclude_container_ids)

    def _read_memory(self, pid: int, entry: _Entry) -> Optional[Tuple[int, bool]]:
        if self._pss_readable:
            try:
                with open(f'{self._proc_root}/{pid}/smaps_rollup', 'rb') as rollup:
                    match = _PSS_LINE.search(rollup.read())
                if match is not None:
                    return int(match.group(1)) * 1024, True
            except FileNotFoundError:
                if not os.path.isdir(f'{self._proc_root}/{pid}'):
                    return None
                self._pss_readable = False  # kernel older than 4.14: no smaps_rollup anywhere
            except ProcessLookupError:
                return None
            except OSError:
                pass  # access denied to this one process: RSS is still readable
        try:
            process = entry.process or psutil.Process(pid)
            return process.memory_info().rss, False
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None


def make_ros_process_scanner(
    settings: RosReserveSettings,
    *,
    exclude_pids: Iterable[int] = (),
    exclude_container_ids: Iterable[str] = (),
) -> RosProcessScanner:
    """Scanner with the include/exclude patterns of `settings`."""
    return RosProcessScanner(
        patterns=settings.patterns,
        exclude_pids=exclude_pids,
        exclude_container_ids=exclude_container_ids,
    )
