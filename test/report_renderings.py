"""Each rendering of a run (console, action result, results.json, summary.md, CSV) side by side."""

import csv
import json
import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple


def renderings(run_dir: Path, console: Optional[str] = None,
               action_result: Any = None) -> Dict[str, Tuple[str, str, Dict[str, str]]]:
    """Status, message and per-model statuses as each rendering shows them."""
    data = json.loads((run_dir / "results.json").read_text())
    shown = {"results.json": (data["run"]["status"], data["run"]["message"],
                              {m["model"]: m["status"] for m in data["models"]})}
    markdown = (run_dir / "summary.md").read_text()
    status, message = re.search(r"^- Status: \*\*(\w+)\*\* — (.*)$", markdown, re.M).groups()
    table = markdown.split("| model | status |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines()[2:] if line.startswith("| ")]
    shown["summary.md"] = (status, message, {r[1].strip(): r[2].strip() for r in rows})
    with open(run_dir / "results.csv", newline="") as handle:
        csv_models = {row["model"]: row["status"] for row in csv.DictReader(handle)}
    shown["results.csv"] = (status, message, csv_models)  # the CSV has per-model rows only
    if console is not None:
        status, message = re.search(r"^run \S+: (\w+) — (.*)$", console, re.M).groups()
        console_models = {}
        for line in console.splitlines():
            match = re.match(r"^  (\S+)\s+(\w+)\s+decode ", line)
            if match:
                console_models[match.group(1)] = match.group(2)
        shown["console"] = (status, message, console_models)
    if action_result is not None:  # the action result carries no run message of its own
        shown["action result"] = (action_result.status, data["run"]["message"],
                                  {m.model: m.status for m in action_result.models})
    return shown


def assert_one_truth(run_dir: Path, console: Optional[str] = None,
                     action_result: Any = None) -> Dict[str, str]:
    """Assert that every rendering shows the same status, message and model statuses."""
    shown = renderings(run_dir, console, action_result)
    reference = shown["results.json"]
    for where, value in shown.items():
        assert value == reference, f"{where} says {value}, results.json says {reference}"
    status, message, models = reference
    ok = sum(1 for s in models.values() if s == "ok")
    if ok:
        assert re.search(rf"\b{ok} ok\b", message), (message, models)
    return models
