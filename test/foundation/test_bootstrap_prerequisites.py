"""bootstrap.sh names the apt package of a missing prerequisite and exits non-zero."""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

# Tools bootstrap.sh itself uses before its prerequisite checks.
BASE_TOOLS = ('dirname', 'flock')


def tool_dir(tmp_path: Path, tools: tuple) -> Path:
    """Return a folder whose only commands are python3 and the given tools."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'python3').symlink_to(sys.executable)
    for tool in BASE_TOOLS + tools:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


@pytest.mark.parametrize('present, expected_package', [
    ((), 'sudo apt-get install cmake'),
    (('cmake',), 'sudo apt-get install build-essential'),
    (('cmake', 'cc', 'gcc'), 'sudo apt-get install g++'),
])
def test_missing_prerequisite_is_named(repo_root, tmp_path, present, expected_package):
    checkout = tmp_path / 'checkout'
    (checkout / 'scripts').mkdir(parents=True)
    shutil.copy(repo_root / 'scripts' / 'bootstrap.sh', checkout / 'scripts' / 'bootstrap.sh')
    env = {key: value for key, value in os.environ.items()
           if key not in ('ROS_DISTRO', 'VIRTUAL_ENV', 'PYTHON')}
    env['PATH'] = str(tool_dir(tmp_path, present))

    result = subprocess.run([shutil.which('bash'), str(checkout / 'scripts' / 'bootstrap.sh')],
                            env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert expected_package in result.stderr
    assert not (checkout / '.venv').exists(), 'nothing is created before the checks pass'
