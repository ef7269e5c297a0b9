"""A finished run recorded in the history and judged against the previous comparable run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from ..core.runs.run_comparison import TEST_DETAIL
from ..core.runs.run_regressions import Regression, find_regressions
from ..core.runs.run_records import record
from .history_db import HistoryDb
from .jsonl_log import LOG_NAME, JsonlLog
from .markdown_report import write_markdown
from .render import load_summary, report_paths
from .results_json import write_results_json
from .run_snapshot_reader import read_run


@dataclass
class HistoryCheck:
    """What recording a run found: the runs it was compared with and any regression."""

    database: str
    machine_id: str
    compared_with: Dict[str, str] = field(default_factory=dict)  # model -> run id
    regressions: List[Regression] = field(default_factory=list)
    newly_recorded: bool = True  # False: the run was recorded before (resumed) and replaced

    @property
    def summary(self) -> str:
        """Return one line for a person: the regressions, or why there are none."""
        if self.regressions:
            return "regression: " + "; ".join(r.sentence() for r in self.regressions)
        if not self.compared_with:
            return ("no earlier comparable run of these models on this machine "
                    "(same num_ctx, num_predict, temperature and suite)")
        runs = sorted(set(self.compared_with.values()))
        return f"no regression beyond noise against run {', '.join(runs)}"

    def to_record(self) -> Dict[str, Any]:
        return {"database": self.database, "machine_id": self.machine_id,
                "compared_with": self.compared_with, "test": TEST_DETAIL,
                "regressions": [r.to_dict() for r in self.regressions],
                "summary": self.summary}


def record_finished_run(run_dir: Path, *, db_path: Path) -> HistoryCheck:
    """
    Record a finished run in the history and flag regressions in its own reports.

    The check is appended to the run's tests.jsonl (the reports' source of truth), then
    results.json and summary.md are rewritten from it. Raises RunLoadError or HistoryError.
    """
    run_dir = Path(run_dir)
    snapshot = read_run(run_dir, require_finished=True)
    with HistoryDb(db_path) as db:
        previous = db.previous_comparable(snapshot)
        regressions = find_regressions(snapshot, previous)
        count = db.record_runs([snapshot], replace=True)
    check = HistoryCheck(database=str(db_path), machine_id=snapshot.machine_id,
                         compared_with={m: r.run_id for m, r in previous.items()},
                         regressions=regressions, newly_recorded=count.added == 1)
    sessions = load_summary(run_dir).sessions
    with JsonlLog(path=run_dir / LOG_NAME) as log:
        log.append(record("history", session=sessions, **check.to_record()))
    paths = report_paths(run_dir)
    summary = load_summary(run_dir)
    write_results_json(summary, paths.results_json)
    write_markdown(summary, paths.markdown)
    return check
