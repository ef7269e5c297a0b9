"""benchmarks/robot_wins.py --smoke: Nav2 grows during a load on both Thors; the referee judges."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_robot_wins_smoke(docker_client):
    if os.geteuid() != 0 or not os.access("/sys/fs/cgroup/memory", os.W_OK):
        pytest.skip("the simulated machines need root and a writable memory cgroup (v1)")
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "robot_wins.py"),
                           "--smoke"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 11 and cells[1] == "load":
            rows[cells[0]] = dict(zip(("n", "crossed", "under", "back", "min", "reserve",
                                       "drops", "kills", "kept"), cells[2:]))
    assert set(rows) == {"thor", "thor_cgroup"}, done.stdout[-3000:]
    for machine, row in rows.items():
        # The referee saw the robot short of its reserve (Nav2 grew into the model's memory),
        # and the models' memory given back, with nobody killed by the kernel.
        assert row["n"] == "1" and row["kills"] == "0", (machine, row)
        assert "n/a" not in row["back"] and "never" not in row["under"], (machine, row)
    # Unified memory: the unload alone leaves the pages in the driver's pool; a drop returns them.
    assert rows["thor"]["drops"] != "0", rows["thor"]
