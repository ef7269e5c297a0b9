"""Run ids and run folders: one folder per run under the results root, never outside it."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Optional

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?(?:_[A-Za-z0-9][A-Za-z0-9_-]{0,63})?$")


class RunDirError(ValueError):
    """A run name or run id is malformed or would leave the results root."""


def validate_run_name(name: str) -> str:
    """Check a user's label for a run: letters, digits, '-' and '_' only (never a path)."""
    if not _NAME.match(name):
        raise RunDirError(f"run name {name!r} may hold only letters, digits, '-' and '_' "
                          "(at most 64, starting with a letter or digit)")
    return name


def make_run_id(name: Optional[str] = None, *, now: Optional[_dt.datetime] = None) -> str:
    """UTC timestamp, plus the validated name when one is given: 20261129T101530Z_thor."""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_{validate_run_name(name)}" if name else stamp


def validate_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise RunDirError(f"run id {run_id!r} is not a run id of this tool "
                          "(expected e.g. 20261129T101530Z or 20261129T101530Z_name)")
    return run_id


def run_dir_for(results_root: Path, run_id: str) -> Path:
    """Return the folder of a run id, checked to lie inside results_root."""
    validate_run_id(run_id)
    root = Path(results_root).resolve()
    path = (root / run_id).resolve()
    if path.parent != root:
        raise RunDirError(f"run id {run_id!r} would leave the results folder {root}")
    return path


def create_run_dir(results_root: Path, run_id: str) -> Path:
    """Create a new run's folder; a clash within the same second gets a -2, -3 ... suffix."""
    Path(results_root).mkdir(parents=True, exist_ok=True)
    stamp, _, name = run_id.partition("_")
    candidate = run_id
    for attempt in range(2, 1000):
        path = run_dir_for(results_root, candidate)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            candidate = f"{stamp}-{attempt}" + (f"_{name}" if name else "")
    raise RunDirError(f"could not create a unique folder for run {run_id}")
