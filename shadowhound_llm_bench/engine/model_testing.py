"""
One model from its start record to its end record: check, admit, load, test, unload.

The test loop stops on a cancel, on memory pressure, or when the policy says the server is gone;
then the guard may bring the server back, the model is loaded again and the tests the outage
broke run again (their failed records stay in the log).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ..core.decider.decision import Action
from ..core.decider.policy import MemoryPolicy
from ..core.decider.policy_settings import PolicySettings
from ..core.ollama.model_metadata import ModelMetadata
from ..core.runs.progress import Phase
from ..core.runs.run_records import ErrorKind, ModelStatus
from ..core.settings.run_options import KeepAlive
from .memory_guard_api import MemoryGuard, Proceed, Skip
from .model_requests import ModelRequests, ModelStop, interrupted_stop
from .run_parts import RunParts

# Without memory management nothing can be recovered: give up as the default policy would.
_UNGUARDED_POLICY = MemoryPolicy(PolicySettings(restart_when_unreachable=False))


class ModelTester:
    """Runs the models of one run, one call per model (or per model of a batch)."""

    def __init__(self, parts: RunParts, requests: ModelRequests) -> None:
        self.parts = parts
        self.requests = requests
        self._server_lost: Dict[str, int] = {}  # model -> times the server vanished during it

    def run_model(self, model: str, index: int) -> ModelStatus:
        """Test one model on its own; return how it ended."""
        parts = self.parts
        parts.progress.emit(Phase.LOADING, model, index, 0.0, f"{model}: checking the server")
        metadata = ModelMetadata(name=model)
        status, reason = ModelStatus.OK, ""
        guard_asked = False
        started = False
        try:
            metadata = self.present_or_recover(model, index)
            parts.recorder.write("model_start", model=model, index=index, metadata=metadata)
            started = True
            keep_alive: KeepAlive = parts.options.keep_alive
            if parts.guard is not None:
                guard_asked = True
                decision = parts.guard.before_model(model)
                if isinstance(decision, Skip):
                    raise ModelStop(ModelStatus.SKIPPED,
                                    f"memory management: {decision.reason}")
                if isinstance(decision, Proceed):
                    keep_alive = decision.keep_alive
            self.requests.load(model, index, keep_alive)
            status, reason = self.test_model(model, index, keep_alive)
        except ModelStop as stop:
            status, reason = stop.status, stop.reason
            if parts.cancel.is_set() and status in (ModelStatus.FAILED, ModelStatus.SKIPPED):
                status, reason = ModelStatus.CANCELED, f"canceled by request ({reason})"
            if not started:
                # Ended before it was loaded (unknown, or the server gone): every model the run
                # touches has a start and an end record, so no report leaves it out.
                parts.recorder.write("model_start", model=model, index=index,
                                     metadata=metadata)
        return self.end_model(model, index, status, reason, guard_asked=guard_asked)

    def end_model(self, model: str, index: int, status: ModelStatus, reason: str, *,
                  guard_asked: bool, concurrent_with: Sequence[str] = ()) -> ModelStatus:
        """Unload through the guard (unless skipped) and write the model's end record."""
        parts = self.parts
        guard = parts.guard
        if guard_asked and guard is not None and status != ModelStatus.SKIPPED:
            parts.progress.emit(Phase.UNLOADING, model, index, 0.95, f"{model}: unloading")
            guard.after_model(model)
        memory = guard.record(model) if guard_asked and guard is not None else None
        parts.recorder.write_memory()
        extra: Dict[str, Any] = {"concurrent_with": list(concurrent_with)} \
            if concurrent_with else {}
        parts.recorder.write("model_end", model=model, status=status.value, reason=reason,
                             memory=memory, **extra)
        parts.progress.emit(
            Phase.UNLOADING if status == ModelStatus.OK else Phase.TESTING, model, index, 1.0,
            f"{model}: {status.value}" + (f" — {reason}" if reason else ""))
        return status

    def present_or_recover(self, model: str, index: int) -> ModelMetadata:
        """ensure_present; when no server answers, let the guard recover it and try once more."""
        try:
            return self.requests.ensure_present(model, index)
        except ModelStop as stop:
            if not stop.unavailable or not self.recover(model, index, stop.reason):
                raise
        return self.requests.ensure_present(model, index)

    def recover(self, model: str, index: int, reason: str) -> bool:
        """
        Report a vanished server to the guard; True when it answers again (retry the model).

        The guard asks the policy (restart the container, or give up) and carries it out; the
        runner only reports. Without a guard, or with one that cannot recover, nothing is done.
        """
        parts = self.parts
        guard = parts.guard
        report = getattr(guard, "on_server_lost", None) if guard is not None else None
        if report is None or parts.cancel.is_set():
            return False
        attempt = self._server_lost.get(model, 0) + 1
        self._server_lost[model] = attempt
        parts.progress.emit(Phase.RESTARTING, model, index, 0.05,
                            f"{model}: the server stopped answering ({reason}); asking memory "
                            "management to recover it")
        recovered = bool(report(model, reason, attempt))
        parts.recorder.write_memory()
        return recovered

    def test_model(self, model: str, index: int, keep_alive: KeepAlive,
                   concurrent_with: Sequence[str] = ()) -> tuple:
        """Run the warm-up and the measured tests of a loaded model; return (status, reason)."""
        parts = self.parts
        guard, options, emit = parts.guard, parts.options, parts.progress.emit
        beside = f" (side by side with {', '.join(concurrent_with)})" if concurrent_with else ""
        tasks = parts.suite.tasks
        total = len(tasks) * options.repetitions
        steps: List[tuple] = []
        if options.warmup:
            steps.append((tasks[0], 0, True))
        steps += [(task, rep, False) for rep in range(1, options.repetitions + 1)
                  for task in tasks]
        done = 0
        unavailable_in_a_row = 0
        lost_in_a_row = 0  # of those, no server answered at all (not a missing model)
        ok_tests = 0
        position = 0
        while position < len(steps):
            task, rep, warmup = steps[position]
            position += 1
            if parts.cancel.is_set():
                return ModelStatus.CANCELED, "canceled by request"
            if guard is not None:
                abort = guard.check_pressure(model)
                if abort:
                    return ModelStatus.ABORTED, f"memory pressure: {abort}"
            within = 0.1 + 0.85 * done / max(1, total)
            if warmup:
                emit(Phase.WARMUP, model, index, 0.08, f"{model}: warm-up ({task.id}){beside}")
            else:
                emit(Phase.TESTING, model, index, within,
                     f"{model}: {task.id} repetition {rep}/{options.repetitions}{beside}")
            if parts.cancel.is_set():
                return ModelStatus.CANCELED, "canceled by request"
            ok, kind = self.requests.run_test(model, task, rep, warmup, keep_alive,
                                              concurrent_with)
            if kind in (ErrorKind.CANCELED.value, ErrorKind.PREEMPTED.value):
                stop = interrupted_stop(model, self.requests.take_interrupt(model), "stream")
                return stop.status, stop.reason
            if not warmup:
                done += 1
                ok_tests += int(ok)
            unavailable_in_a_row = unavailable_in_a_row + 1 \
                if kind in (ErrorKind.UNAVAILABLE.value, ErrorKind.MODEL_NOT_FOUND.value) else 0
            lost_in_a_row = lost_in_a_row + 1 if kind == ErrorKind.UNAVAILABLE.value else 0
            verdict = policy_of(guard).on_unanswered_requests(
                model, unanswered_in_a_row=unavailable_in_a_row, no_server_in_a_row=lost_in_a_row,
                side_by_side=bool(concurrent_with))
            if verdict.action is not Action.KEEP:
                reason = "the server stopped answering during the tests"
                if verdict.action is not Action.RESTART \
                        or not self.recover(model, index, reason):
                    asked = model in self._server_lost
                    return ModelStatus.FAILED, reason + (
                        " (memory management did not bring it back)" if asked else "")
                try:
                    self.requests.load(model, index, keep_alive)
                except ModelStop as stop:
                    return stop.status, f"{reason}; after the restart: {stop.reason}"
                # Run again the tests the outage broke; the failed records stay in the log.
                broken = steps[position - unavailable_in_a_row:position]
                done -= sum(1 for _, _, is_warmup in broken if not is_warmup)
                position -= unavailable_in_a_row
                unavailable_in_a_row = lost_in_a_row = 0
        if ok_tests == 0:
            return ModelStatus.FAILED, "every measured test failed"
        return ModelStatus.OK, ""


def policy_of(guard: Optional[MemoryGuard]) -> MemoryPolicy:
    """Return the guard's policy (the one decider), or the unguarded default."""
    policy = getattr(guard, "policy", None)
    return policy if isinstance(policy, MemoryPolicy) else _UNGUARDED_POLICY
