"""Child process groups: SIGINT restored, the whole group stopped, readiness read from a log."""

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from shadowhound_llm_bench.common.process_group import (start_process_group,
                                                        stop_process_group, wait_for_text)

# A parent that starts a grandchild and prints both pids, then waits forever.
PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"pids {child.pid}", flush=True)
    time.sleep(600)
""")


def test_sigint_is_restored_even_when_the_caller_ignores_it():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = start_process_group([sys.executable, "-c", "import time; time.sleep(600)"])
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) != 0  # interrupted, not ignored
    finally:
        stop_process_group(process)


def test_stopping_the_group_also_stops_grandchildren(tmp_path):
    log = tmp_path / "parent.log"
    with open(log, "wb") as out:
        process = start_process_group([sys.executable, "-c", PARENT], stdout=out)
    wait_for_text(log, "pids", process, timeout_s=20, what="the parent")
    grandchild = int(log.read_text().split()[1])
    assert psutil.pid_exists(grandchild)
    stop_process_group(process, grace_s=2)
    assert process.poll() is not None
    assert _dead_within(grandchild, 5.0), "the grandchild outlived its group"


def _dead_within(pid, timeout_s):
    """Gone, or a zombie waiting for its new parent to reap it."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_waiting_for_text_reports_a_process_that_died(tmp_path):
    log = tmp_path / "dead.log"
    with open(log, "wb") as out:
        process = start_process_group([sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
                                      stdout=out, stderr=subprocess.STDOUT)
    with pytest.raises(RuntimeError, match=r"the server exited \(3\)"):
        wait_for_text(log, "ready", process, timeout_s=20, what="the server")


def test_waiting_for_text_has_a_deadline(tmp_path):
    process = start_process_group([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with pytest.raises(RuntimeError, match="not ready within 0.3 s"):
            wait_for_text(tmp_path / "never.log", "ready", process, timeout_s=0.3)
    finally:
        stop_process_group(process, grace_s=1)
