"""results.json: the run summary in a versioned schema."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.runs.run_records import RunSummary
from .atomic_write import write_atomic

RESULTS_NAME = "results.json"


def write_results_json(summary: RunSummary, path: Path) -> None:
    text = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(path, text + "\n")
