"""
OOM score backstop: keeps Ollama's runners the kernel's first victims and ROS / Nav2 its last.

It works when the node is dead too: the adjustments stay on the processes. Runners are new
processes at every load, so the container's processes are looked at again every period (on a
worker thread: the sampler is never delayed). A refusal is reported once per process, with why.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..adapters.oom_score import (
    ROS_OOM_SCORE_ADJ, RUNNER_OOM_SCORE_ADJ, OomAdjustment, process_tree_pids,
    read_oom_score_adj, runner_pids, set_oom_score_adj)

_LOG = logging.getLogger(__name__)

PERIOD_S = 0.25


def container_pids(backend: Any) -> List[int]:
    """Return the Ollama container's pids: its cgroup, the engine's list, or a process tree."""
    listed = getattr(backend, "process_ids", None)
    pids = listed() if listed is not None else None
    if pids:
        return list(pids)
    from_engine = getattr(backend, "engine_process_ids", None)
    if from_engine is not None:
        return from_engine()
    pid = getattr(backend, "pid", None)
    return process_tree_pids(pid) if pid else []


def ros_pids_of(headroom: Any) -> Callable[[], Iterable[int]]:
    """Return a reader of the ROS / Nav2 pids the node measures (RosHeadroom.latest())."""
    def pids() -> Iterable[int]:
        latest = headroom.latest() if headroom is not None and hasattr(headroom, "latest") \
            else None
        return [p.pid for p in latest.processes] if latest is not None else []
    return pids


class OomBackstop:
    """Adjusts OOM scores every PERIOD_S until stopped; each outcome kept in `adjustments`."""

    def __init__(self, *, backend: Any, ros_pids: Callable[[], Iterable[int]],
                 runner_adj: int = RUNNER_OOM_SCORE_ADJ, ros_adj: int = ROS_OOM_SCORE_ADJ,
                 period_s: float = PERIOD_S) -> None:
        self.backend = backend
        self.ros_pids = ros_pids
        self.runner_adj = runner_adj
        self.ros_adj = ros_adj
        self.period_s = period_s
        self.adjustments: List[OomAdjustment] = []
        self._refused: Dict[int, int] = {}  # pid -> value the kernel would not take
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "OomBackstop":
        """Adjust now, then every period on a daemon thread."""
        self.adjust_once()
        self._thread = threading.Thread(target=self._loop, name="oom-backstop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop adjusting (the adjustments made stay on the processes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.adjust_once()
            except Exception as exc:  # a vanished process must not end the backstop
                _LOG.warning("OOM score adjustment failed: %s", exc)

    def adjust_once(self) -> List[OomAdjustment]:
        """One pass: runners up, ROS processes down; returns what was tried this pass."""
        tried = []
        for pid in runner_pids(container_pids(self.backend)):
            tried += self._adjust(pid, self.runner_adj)
        for pid in self.ros_pids():
            tried += self._adjust(pid, self.ros_adj)
        return tried

    def _adjust(self, pid: int, value: int) -> List[OomAdjustment]:
        # Read back every pass: Ollama (or anyone) may set the score again after a load.
        if read_oom_score_adj(pid) == value or self._refused.get(pid) == value:
            return []
        result = set_oom_score_adj(pid, value)
        self.adjustments.append(result)
        if not result.ok:
            self._refused[pid] = value  # said once; the kernel will not change its mind
            _LOG.warning("cannot set oom_score_adj %d on %s (pid %d): %s", value, result.name,
                         pid, result.error)
        return [result]
