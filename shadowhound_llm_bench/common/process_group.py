"""Child processes in a session of their own: started with SIGINT restored, stopped as a group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Optional, Sequence


def _restore_sigint() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored, and an ignored
    # signal stays ignored across exec: without this, a node started from such a shell could
    # never be interrupted.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_process_group(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """Start argv as the leader of a new session, SIGINT at its default (Popen kwargs pass on)."""
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(list(argv), start_new_session=True, preexec_fn=_restore_sigint,
                            **popen_kwargs)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process_group(process: Optional[subprocess.Popen], *,
                       first_signal: Optional[int] = signal.SIGTERM, grace_s: float = 5.0) -> None:
    """
    Send first_signal to the group (None: already sent), wait up to grace_s, then SIGKILL it.

    The group is killed even when its leader exited in time, so that grandchildren left behind
    (model runners, nodes of a launch) never outlive it.
    """
    if process is None:
        return
    if process.poll() is None:
        if first_signal is not None:
            _signal_group(process, first_signal)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process, signal.SIGKILL)
    try:
        process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass


def wait_for_text(path: Path, text: str, process: subprocess.Popen, *, timeout_s: float,
                  what: str = "the process") -> None:
    """Wait until `text` is in the log at `path`; raise when the process dies or time runs out."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{content[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} was not ready within {timeout_s:g} s; see {path}")
