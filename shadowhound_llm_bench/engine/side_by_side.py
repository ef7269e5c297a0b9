"""
A plan batch tested side by side: small models admitted together and tested at the same time.

Every model is admitted by the guard (holding room for its batch-mates) before any is loaded; the
loads run one after another (as Ollama's scheduler does them), the tests in a thread per model,
and the guard finishes each model afterwards. A model the guard will not admit beside the others
is tested on its own after the batch. The records name the models each ran beside.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Mapping

from ..adapters.ollama_client import OllamaError
from ..core.ollama.model_metadata import ModelMetadata, same_model
from ..core.runs.progress import Phase
from ..core.runs.run_records import ModelStatus
from ..core.settings.run_options import KeepAlive
from .memory_guard_api import MemoryGuard, Proceed, Skip
from .model_requests import ModelRequests, ModelStop
from .model_testing import ModelTester
from .run_parts import RunParts


class SideBySide:
    """Runs the batches of more than one model of a guarded run."""

    def __init__(self, parts: RunParts, tester: ModelTester, requests: ModelRequests) -> None:
        self.parts = parts
        self.tester = tester
        self.requests = requests

    def run_batch(self, models: List[str], index_of: Mapping[str, int]) -> List[ModelStatus]:
        """Test the models of a plan batch at the same time; statuses in the order they ended."""
        guard = self.parts.guard
        assert guard is not None
        self.parts.progress.begin_batch(models, min(index_of[m] for m in models))
        try:
            return self._run_batch_steps(models, index_of, guard)
        finally:
            self.parts.progress.end_batch()

    def _run_batch_steps(self, models: List[str], index_of: Mapping[str, int],
                         guard: MemoryGuard) -> List[ModelStatus]:
        parts, tester = self.parts, self.tester
        write, emit = parts.recorder.write, parts.progress.emit
        emit(Phase.LOADING, models[0], index_of[models[0]], 0.0,
             f"testing side by side: {', '.join(models)}")
        statuses: List[ModelStatus] = []
        present: Dict[str, ModelMetadata] = {}
        for model in models:
            try:
                present[model] = self.requests.ensure_present(model, index_of[model])
            except ModelStop as stop:
                write("model_start", model=model, index=index_of[model],
                      metadata=ModelMetadata(name=model))
                statuses.append(tester.end_model(model, index_of[model], stop.status,
                                                 stop.reason, guard_asked=False))
        candidates = list(present)
        keep_alive: Dict[str, KeepAlive] = {}
        alone: List[str] = []
        for model in list(candidates):
            mates = [m for m in candidates if m != model]
            decision = guard.before_model(model, together_with=mates) if mates \
                else guard.before_model(model)
            if isinstance(decision, Skip):
                candidates.remove(model)
                if mates:
                    alone.append(model)
                    emit(Phase.LOADING, model, index_of[model], 0.0,
                         f"{model}: not beside {', '.join(mates)} ({decision.reason}); "
                         "tested on its own after them")
                    continue
                write("model_start", model=model, index=index_of[model],
                      metadata=present[model])
                statuses.append(tester.end_model(
                    model, index_of[model], ModelStatus.SKIPPED,
                    f"memory management: {decision.reason}", guard_asked=True))
                continue
            keep_alive[model] = decision.keep_alive if isinstance(decision, Proceed) \
                else parts.options.keep_alive
        admitted = candidates
        for model in admitted:
            write("model_start", model=model, index=index_of[model], metadata=present[model],
                  concurrent_with=[m for m in admitted if m != model])
        ended: Dict[str, tuple] = {}
        loaded: List[str] = []
        retried = False
        for model in admitted:
            if parts.cancel.is_set():
                ended[model] = (ModelStatus.CANCELED, "canceled by request")
                continue
            try:
                retried = self.requests.load(model, index_of[model],
                                             keep_alive[model]) > 1 or retried
                loaded.append(model)
            except ModelStop as stop:
                ended[model] = (stop.status, stop.reason)
                retried = True  # the guard may have restarted the container
        if retried and len(loaded) > 1:
            self._reload_missing(loaded, index_of, keep_alive)
        self._test_side_by_side(loaded, index_of, keep_alive, ended)
        for model in admitted:
            status, reason = ended[model]
            mates = [m for m in loaded if m != model] if model in loaded else []
            statuses.append(tester.end_model(model, index_of[model], status, reason,
                                             guard_asked=True, concurrent_with=mates))
        parts.progress.end_batch()
        for model in alone:
            if parts.cancel.is_set():
                break
            statuses.append(tester.run_model(model, index_of[model]))
        return statuses

    def _reload_missing(self, loaded: List[str], index_of: Mapping[str, int],
                        keep_alive: Mapping[str, KeepAlive]) -> None:
        """After a failed load (and maybe a restart), load again what Ollama no longer holds."""
        try:
            listed = [str(e.get("name") or e.get("model") or "")
                      for e in self.parts.client.ps()]
        except OllamaError:
            return
        for model in list(loaded):
            if any(same_model(model, name) for name in listed):
                continue
            try:
                self.requests.load(model, index_of[model], keep_alive[model])
            except ModelStop:
                pass  # its tests load it again on demand and record what happens

    def _test_side_by_side(self, models: List[str], index_of: Mapping[str, int],
                           keep_alive: Mapping[str, KeepAlive],
                           ended: Dict[str, tuple]) -> None:
        """Run each model's tests in its own thread; fills ended with (status, reason)."""
        errors: List[BaseException] = []

        def work(model: str) -> None:
            mates = [m for m in models if m != model]
            try:
                ended[model] = self.tester.test_model(model, index_of[model], keep_alive[model],
                                                      concurrent_with=mates)
            except BaseException as exc:  # re-raised in the calling thread below
                errors.append(exc)
                ended[model] = (ModelStatus.FAILED, f"internal error: {type(exc).__name__}: "
                                f"{exc}")

        threads = [threading.Thread(target=work, args=(m,), name=f"bench-{m}", daemon=True)
                   for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
