"""The paths the lint tests check: the package's Python sources, tests, launch files, scripts."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ('shadowhound_llm_bench', 'test', 'launch', 'benchmarks', 'setup.py')


def lint_paths() -> list:
    """Return the existing lint targets, relative to the repository root."""
    return [name for name in CANDIDATES if (REPO_ROOT / name).exists()]
