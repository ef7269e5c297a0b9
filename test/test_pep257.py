"""Docstring check with the ament_pep257 rules: docstrings optional, well-formed when present."""

import logging
import os
import subprocess
import sys

import pytest

from lint_paths import lint_paths, REPO_ROOT

# The "ament" convention of ament_pep257, for the fallback when its wheel is not usable.
AMENT_PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257(capsys):
    os.chdir(REPO_ROOT)
    try:
        from ament_pep257.main import main
    except ImportError:
        main = None
    if main is not None:
        # ament_pep257 turns on one INFO line per checked file; only the findings matter here.
        logging.getLogger('pydocstyle.utils').setLevel(logging.WARNING)
        rc = main(argv=lint_paths())
        findings = [line for line in capsys.readouterr().err.splitlines()
                    if not line.endswith(' errors')]
        assert rc == 0, 'Found %d docstring errors:\n' % len(findings) + '\n'.join(findings)
        return
    proc = subprocess.run(
        [sys.executable, '-m', 'pydocstyle', '--ignore', AMENT_PEP257_IGNORE, *lint_paths()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, 'pydocstyle found errors:\n' + proc.stdout + proc.stderr
