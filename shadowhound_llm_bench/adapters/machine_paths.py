"""Where a machine's files and tools are, under a root ("/" is the machine itself)."""

from __future__ import annotations

import os
import shutil
from typing import Optional


def under_root(root: str, path: str) -> str:
    """Join an absolute machine path under a root ("/" is the machine itself)."""
    return os.path.join(root, path.lstrip("/"))


def find_tool(root: str, name: str) -> Optional[str]:
    """Return the tool under root (usr/sbin, usr/bin), or on PATH when root is the machine."""
    for folder in ("/usr/sbin", "/usr/bin"):
        path = under_root(root, f"{folder}/{name}")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    if os.path.abspath(root) == "/":
        return shutil.which(name)
    return None
