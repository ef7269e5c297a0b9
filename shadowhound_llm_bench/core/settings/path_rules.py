"""Which files a goal or a parameter may name: suites by name, paths only under allowed folders."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from ..runs.inert_text import quoted

SUITE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SUITE_SUFFIXES = (".yaml", ".yml")
MAX_PATH_CHARS = 4096


class PathRefused(ValueError):
    """A path names something outside what the configuration allows (or is malformed)."""


def looks_like_path(reference: str) -> bool:
    """Tell whether a suite reference is a path (a separator or a YAML suffix), not a name."""
    return (os.sep in reference or "/" in reference
            or reference.endswith(SUITE_SUFFIXES))


def real_folders(folders: Iterable[object]) -> List[Path]:
    """Return the allowed folders absolute, symlinks resolved, empty entries dropped."""
    return [Path(os.path.realpath(os.path.expanduser(str(f)))) for f in folders
            if str(f).strip()]


def is_inside(path: Path, folder: Path) -> bool:
    """Tell whether path (already resolved) is folder or lies below it."""
    return path == folder or folder in path.parents


def allowed_suite_path(reference: str, allowed_dirs: Sequence[object], *,
                       rule_name: str = "benchmark.suite_path_dirs") -> Path:
    """
    Resolve a suite path and check it against the allowed folders, before looking at the file.

    The check comes first so that a refused path tells nothing about what exists there;
    symlinks are resolved so that a link inside an allowed folder cannot lead outside it.
    """
    if len(reference) > MAX_PATH_CHARS or "\x00" in reference:
        raise PathRefused(f"suite path {quoted(reference)} is malformed")
    if not reference.endswith(SUITE_SUFFIXES):
        raise PathRefused(f"suite path {quoted(reference)} must end in .yaml or .yml")
    folders = real_folders(allowed_dirs)
    if not folders:
        raise PathRefused(f"suite path {quoted(reference)} refused: suite files are accepted "
                          f"only by name unless {rule_name} names folders (it names none)")
    resolved = Path(os.path.realpath(reference))
    if not any(is_inside(resolved, folder) for folder in folders):
        # The folders are not named: the sender of a goal learns nothing of the node's files.
        raise PathRefused(f"suite path {quoted(reference)} is outside the folders {rule_name} "
                          "allows")
    if not resolved.is_file():
        raise PathRefused(f"suite file {quoted(reference)} does not exist")
    return resolved


def suite_name_error(name: str) -> Optional[str]:
    """Say why a suite name is malformed, or None."""
    if SUITE_NAME.match(name):
        return None
    return f"suite name {quoted(name)} is malformed (letters, digits, '-', '_'; at most 64)"
