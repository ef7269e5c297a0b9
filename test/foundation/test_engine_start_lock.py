"""scripts/start_docker_engine.sh: two callers at once share one private engine (a lock)."""

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from foundation_helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "start_docker_engine.sh"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def private_engine_dir():
    """Give a fresh DOCKERD_DIR; the engine the test starts there is stopped by its PID."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("flock") is None:
        pytest.skip("needs root, dockerd and flock to start a private engine")
    if os.path.exists("/var/run/docker.sock"):
        pytest.skip("a system engine answers first; the script would reuse it")
    directory = f"/tmp/shb-lock-{uuid.uuid4().hex[:8]}"
    yield directory
    pid_file = os.path.join(directory, "dockerd.pid")
    if os.path.exists(pid_file):
        pid = int(open(pid_file).read().strip() or 0)
        if pid > 0 and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + 20
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.1)
    for mount in (os.path.join(directory, "exec", "netns", "default"),
                  os.path.join(directory, "data")):  # dockerd leaves these when killed
        if os.path.ismount(mount):
            subprocess.run(["umount", mount], check=False)
    shutil.rmtree(directory, ignore_errors=True)


def test_two_callers_at_once_share_one_engine(private_engine_dir):
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["DOCKERD_DIR"] = private_engine_dir
    callers = [subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [c.communicate(timeout=120) for c in callers]
    codes = [c.returncode for c in callers]
    assert codes == [0, 0], results
    hosts = {out.strip() for out, _ in results}
    assert hosts == {f"unix://{private_engine_dir}/docker.sock"}, results
    messages = " ".join(err for _, err in results)
    assert messages.count("starting dockerd") == 1, messages  # one started it ...
    assert messages.count("reusing the Docker engine") == 1, messages  # ... the other reused it
    assert "does not answer" not in messages
    pid = int(open(os.path.join(private_engine_dir, "dockerd.pid")).read())
    assert _pid_alive(pid)
