"""
What a finished run's status word means, decided from its models' statuses in one place.

  ok       every model the run was asked for completed its tests (or was complete already in the
           log of the run it resumes);
  partial  at least one model completed its tests, and at least one was skipped, failed or
           aborted;
  failed   no model completed its tests (all skipped, failed or aborted, or none could start);
  canceled the run was stopped on request; the models done so far are in the reports.

`success` is true only for ok (and for a dry run's plan): a run that tested nothing, or not
everything it was asked for, is not a success.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from .run_records import ModelStatus, RunStatus

SUCCESS_STATUSES = ("ok", "planned")


def run_status(statuses: Sequence[ModelStatus], *, canceled: bool,
               already_complete: int = 0) -> Tuple[RunStatus, str]:
    """Return the run's status and a one-line message from the statuses of its models."""
    counts = {s.value: list(statuses).count(s) for s in set(statuses)}
    # One count for the whole run: models completed before a resume are ok models of this run.
    totals = dict(counts)
    if already_complete:
        totals[ModelStatus.OK.value] = totals.get(ModelStatus.OK.value, 0) + already_complete
    counted = ", ".join(f"{n} {s}" for s, n in sorted(totals.items())) + (
        f" ({already_complete} ok before the resume)" if already_complete and statuses else "")
    if canceled:
        return RunStatus.CANCELED, "canceled; partial reports written" + (
            f" ({counted})" if counted else "")
    tested = counts.get(ModelStatus.OK.value, 0)
    if not statuses:
        if already_complete:
            return RunStatus.OK, "all models already complete"
        return RunStatus.FAILED, "no model was tested"
    if tested == len(statuses):
        return RunStatus.OK, counted
    if tested or already_complete:
        return RunStatus.PARTIAL, f"not every model was tested: {counted}"
    return RunStatus.FAILED, f"no model completed its tests: {counted}"


def is_success(status: str) -> bool:
    """Tell whether a run status counts as success (ok, or a dry run's plan)."""
    return status in SUCCESS_STATUSES
