"""The one folder the node and the CLI keep state in between runs: footprints and action costs."""

from __future__ import annotations

import os
from pathlib import Path

from .management_costs import COSTS_FILE_NAME

APP_NAME = "shadowhound_llm_bench"
FOOTPRINT_CACHE_NAME = "footprints.json"


def state_dir(override: str = "") -> Path:
    """Return the state folder: override, else $XDG_CACHE_HOME (~/.cache)/shadowhound_llm_bench."""
    if override.strip():
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / APP_NAME


def footprint_cache_path(override: str = "") -> str:
    """Return the footprint cache file in the state folder."""
    return str(state_dir(override) / FOOTPRINT_CACHE_NAME)


def management_costs_path(override: str = "") -> str:
    """Return the measured unload / restart durations file in the state folder."""
    return str(state_dir(override) / COSTS_FILE_NAME)
