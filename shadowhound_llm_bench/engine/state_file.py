"""Small JSON files a robot keeps between runs: a damaged one is set aside, writes are atomic."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from ..reports.atomic_write import write_atomic

_LOG = logging.getLogger(__name__)
T = TypeVar("T")


class OtherFormat(ValueError):
    """A state file written in another format, by an earlier (or later) version of the tool."""


def check_format(data: Any, version: int, key: str) -> Any:
    """Return data[key] when the file is of this format; OtherFormat otherwise."""
    found = data.get("version") if isinstance(data, dict) else None
    if found != version:
        raise OtherFormat(f"format {found!r}, this version reads format {version}")
    return data[key]


def load_state_file(path: Optional[str], parse: Callable[[Any], T], *, what: str) -> Optional[T]:
    """
    Return parse(JSON of the file), or None when there is no file.

    A file that cannot be read or parsed is renamed to `<path>.damaged-<time>` (kept for a
    person to look at) and None is returned: a cache must never stop a run.
    """
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return parse(json.load(handle))
    except OtherFormat as exc:  # an upgrade, not damage: set aside quietly and measured anew
        aside = f"{path}.other-format-{int(time.time())}"
        _LOG.info("%s %s was written by another version of this tool (%s); kept as %s, "
                  "measuring anew", what, path, exc, aside)
        try:
            os.replace(path, aside)
        except OSError:
            pass
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = f"{path}.damaged-{int(time.time())}"
        _LOG.warning("%s %s unreadable (%s); kept as %s, starting empty", what, path, exc, aside)
        try:
            os.replace(path, aside)
        except OSError:
            pass
        return None


def save_state_file(path: str, payload: Any, *, what: str) -> None:
    """Write payload as JSON, whole or not at all; a failure is logged, never raised."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(Path(path), json.dumps(payload, indent=1, sort_keys=True))
    except OSError as exc:
        _LOG.warning("cannot write %s %s: %s", what, path, exc)
