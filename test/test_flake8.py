"""Style check with the rules of ament_flake8 (max line length 99)."""

import os
import subprocess
import sys

import pytest

from lint_paths import lint_paths, REPO_ROOT

# The ament_flake8 defaults, for the fallback when its wheel is not usable.
AMENT_FLAKE8_IGNORE = 'B902,C816,D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404,I202'


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    os.chdir(REPO_ROOT)
    try:
        from ament_flake8.main import main_with_errors
    except ImportError:
        main_with_errors = None
    if main_with_errors is not None:
        rc, errors = main_with_errors(argv=lint_paths())
        assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + \
            '\n'.join(errors)
        return
    proc = subprocess.run(
        [sys.executable, '-m', 'flake8', '--max-line-length', '99',
         '--extend-ignore', AMENT_FLAKE8_IGNORE, *lint_paths()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, 'flake8 found errors:\n' + proc.stdout + proc.stderr
