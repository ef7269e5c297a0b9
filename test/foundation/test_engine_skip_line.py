"""`make test` without a container engine ends with one loud line naming the skipped tests."""

import os
import subprocess

from foundation_helpers import REPO_ROOT


def test_docker_tests_skipped_for_want_of_an_engine_are_named_on_the_last_line(tmp_path):
    env = dict(os.environ)
    env.update(DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", SHB_NO_ENGINE_START="1",
               SHB_TEST_ENGINES="docker")
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "test.sh"), "test/policy/test_backends.py",
         "-q", "-p", "no:cacheprovider", "-k", "missing_container or footprint_cache"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "SKIPPED 1 Docker tests" in last, done.stdout
    assert "test/policy/test_backends.py (1)" in last
    assert "scripts/start_docker_engine.sh" in last and "make test" in last
