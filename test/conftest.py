"""Settings shared by every test area."""

import atexit
import collections
import os
import re
import shutil
import tempfile

# ROS 2 discovery stays on this machine, so parallel test runs do not see each other's nodes.
# Each area also picks its own ROS_DOMAIN_ID (see the area's conftest.py).
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
# The product's state folder (footprints, costs, calibration, history) defaults to
# $XDG_CACHE_HOME/shadowhound_llm_bench: tests (and the nodes they start) get a folder of their
# own, so they neither read nor write the user's and a measurement cannot leak between runs.
os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='shb-test-cache-')
atexit.register(shutil.rmtree, os.environ['XDG_CACHE_HOME'], True)


# Skips for want of a container engine: named on one loud line at the very end of a run.
_ENGINE_SKIP = re.compile(r"no (Docker|Podman) engine")
_REAL_SKIP = re.compile(r"no real Ollama")


def pytest_terminal_summary(terminalreporter):
    """Name the tests skipped because no Docker (or Podman) engine answered, and the fix."""
    all_skipped = terminalreporter.stats.get("skipped", [])
    real = [r for r in all_skipped if _REAL_SKIP.search(str(getattr(r, "longrepr", "")))]
    if real:
        terminalreporter.write_line(
            f"SKIPPED {len(real)} real-Ollama tests: no release found in ../shared/ollama "
            "(SHB_OLLAMA_DIST) and no `ollama` on PATH", red=True, bold=True)
    skipped = [r for r in all_skipped if _ENGINE_SKIP.search(str(getattr(r, "longrepr", "")))]
    if not skipped:
        return
    per_file = collections.Counter(r.nodeid.split("::")[0] for r in skipped)
    line = (f"SKIPPED {len(skipped)} Docker tests, no container engine answered: "
            + ", ".join(f"{path} ({count})" for path, count in sorted(per_file.items()))
            + ' -- run them with: export DOCKER_HOST="$(sudo bash scripts/start_docker_engine.sh)"'
            " && make test")
    path = os.environ.get("SHB_ENGINE_SKIPS_FILE")
    if path:  # scripts/test.sh prints it after pytest's own last line
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(line)
    else:
        terminalreporter.write_line(line, red=True, bold=True)


# ---- the real Ollama (../shared/ollama or an `ollama` on PATH) ---------------------------------
# Every real-server test runs on each release found; without any, they skip with one loud line.
from support.real_ollama import real_ollama_dist, real_ollama_server  # noqa: E402,F401
