"""
A model's requests to Ollama and their records: make it present (pull), load it, run one test.

Each request writes its record to the run log before anything else happens. A request that ends
the model raises ModelStop with the model's status and the reason.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Sequence

from ..adapters.ollama_client import (
    ModelNotFound, OllamaError, OllamaInterrupted, OllamaUnavailable)
from ..core.ollama.model_metadata import ModelMetadata, find_tag, metadata_from
from ..core.ollama.request_metrics import cut_short, metrics_from_capture
from ..core.runs.progress import Phase
from ..core.runs.run_records import ErrorKind, ModelStatus, utc_now_iso
from ..core.runs.scoring import score_output
from ..core.runs.suite import Task
from ..core.settings.run_options import KeepAlive
from .load_failure import load_failure_fields, oom_kill_count
from .run_parts import RunParts

OUTPUT_KEEP_CHARS = 4000
MAX_LOAD_ATTEMPTS = 5  # hard cap, whatever a guard says


class ModelStop(Exception):
    """Ends the current model early with a status and reason (unavailable: no server answered)."""

    def __init__(self, status: ModelStatus, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.unavailable = unavailable


class ModelRequests:
    """Sends a run's requests for one model at a time and writes what each of them did."""

    def __init__(self, parts: RunParts) -> None:
        self.parts = parts
        self.tags: List[Dict[str, Any]] = []  # the server's model list, as last read
        self._interrupts: Dict[str, OllamaInterrupted] = {}  # model -> its cut request

    def take_interrupt(self, model: str) -> OllamaInterrupted:
        """Return (and forget) the cut request that ended the model's last test."""
        return self._interrupts.pop(model)

    def ensure_present(self, model: str, index: int) -> ModelMetadata:
        """Make sure the server has the model (pull it if allowed); return its metadata."""
        client, options = self.parts.client, self.parts.options
        tag = find_tag(self.tags, model)
        if tag is None:
            if not options.pull_missing:
                raise ModelStop(ModelStatus.SKIPPED,
                                f"{model} is not on the server and pulling is turned off")
            self.pull(model, index)
            try:
                self.tags = client.tags()
            except OllamaError as exc:
                raise ModelStop(ModelStatus.FAILED, f"listing models after the pull: {exc}",
                                unavailable=isinstance(exc, OllamaUnavailable))
            tag = find_tag(self.tags, model)
            if tag is None:
                raise ModelStop(ModelStatus.SKIPPED,
                                f"{model} is still not listed after a successful pull")
        try:
            show = client.show(model)
        except ModelNotFound as exc:
            raise ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: {exc.message}")
        except OllamaError as exc:
            raise ModelStop(ModelStatus.FAILED, f"reading {model}'s details failed: {exc}",
                            unavailable=isinstance(exc, OllamaUnavailable))
        return metadata_from(model, tag, show)

    def pull(self, model: str, index: int) -> None:
        """Pull the model, showing its progress as the first few percent of its slice."""
        emit = self.parts.progress.emit
        emit(Phase.PULLING, model, index, 0.0, f"{model}: not on the server, pulling")
        last_emit = [0.0]

        def progress(chunk: Mapping[str, Any]) -> None:
            now = time.monotonic()
            total, done = chunk.get("total"), chunk.get("completed")
            if now - last_emit[0] < 0.5 and chunk.get("status") != "success":
                return
            last_emit[0] = now
            text = str(chunk.get("status") or "")
            share = 0.0
            if isinstance(total, (int, float)) and isinstance(done, (int, float)) and total > 0:
                share = done / total
                text += f" {share * 100:.0f} % of {total / 1e9:.2f} GB"
            emit(Phase.PULLING, model, index, 0.04 * share, f"{model}: pull {text}")

        try:
            self.parts.client.pull(model, on_progress=progress,
                                   deadline_s=self.parts.options.pull_deadline_s)
        except (ModelNotFound, OllamaError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            if isinstance(exc, OllamaUnavailable):
                raise ModelStop(ModelStatus.FAILED, f"pulling {model}: server unavailable: {exc}",
                                unavailable=True)
            raise ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: pull failed: {message}")

    def load(self, model: str, index: int, keep_alive: KeepAlive) -> int:
        """Load the model (retrying as the guard says); return the attempts it took."""
        parts = self.parts
        guard, options = parts.guard, parts.options
        attempt = 0
        while True:
            attempt += 1
            parts.progress.emit(Phase.LOADING, model, index, 0.05,
                                f"{model}: loading (attempt {attempt})")
            started, oom_before = time.perf_counter(), oom_kill_count(guard)
            try:
                reply = parts.client.load(model, keep_alive=keep_alive,
                                          options=options.ollama_options(),
                                          deadline_s=options.load_deadline_s)
            except OllamaError as exc:
                failure = load_failure_fields(exc, guard, oom_before)  # killed? OOM?
                parts.recorder.write("load", model=model, ok=False, attempt=attempt,
                                     client_s=time.perf_counter() - started,
                                     error_kind=error_kind(exc), **failure)
                if isinstance(exc, OllamaInterrupted):
                    raise interrupted_stop(model, exc, "load")
                if isinstance(exc, ModelNotFound):
                    raise ModelStop(ModelStatus.SKIPPED, f"unknown model {model}: {exc.message}")
                if guard is not None:
                    retry = guard.on_load_failure(model, failure["error"], attempt)
                else:
                    retry = attempt < options.load_attempts
                if not retry or attempt >= MAX_LOAD_ATTEMPTS or parts.cancel.is_set():
                    raise ModelStop(ModelStatus.FAILED,
                                    f"load failed after {attempt} attempt(s): {exc}")
                continue
            client_s = time.perf_counter() - started
            # Ollama's load reply (done_reason "load") carries no load_duration: the load time
            # is what the client measured, unless a server reports its own.
            load_ns = reply.get("load_duration")
            parts.recorder.write(
                "load", model=model, ok=True, attempt=attempt, keep_alive=keep_alive,
                client_s=client_s,
                load_s=load_ns / 1e9 if isinstance(load_ns, int) and load_ns > 0 else client_s,
                load_source="ollama" if isinstance(load_ns, int) and load_ns > 0 else "client")
            return attempt

    def run_test(self, model: str, task: Task, rep: int, warmup: bool,
                 keep_alive: KeepAlive, concurrent_with: Sequence[str] = ()) -> tuple:
        """Run one test and write its record; return (ok, error kind or "")."""
        parts = self.parts
        options, write = parts.options, parts.recorder.write
        fields: Dict[str, Any] = {"model": model, "task": task.id, "repetition": rep,
                                  "warmup": warmup}
        if concurrent_with:
            # Measured while other models ran on the same machine: not a solo number.
            fields["concurrent_with"] = list(concurrent_with)
        fields["started"] = utc_now_iso()  # with the record's stamp: when the test ran
        try:
            capture = parts.client.generate_stream(
                model, task.render_prompt(), deadline_s=options.request_deadline_s,
                options=options.ollama_options(), keep_alive=keep_alive,
                system=task.system or None, stall_s=options.stream_stall_s)
        except OllamaError as exc:
            if isinstance(exc, OllamaInterrupted):
                self._interrupts[model] = exc
            partial = exc.capture
            write("test", status="failed", error_kind=error_kind(exc), error=str(exc),
                  metrics=metrics_from_capture(partial) if partial else None,
                  output=(partial.text[:OUTPUT_KEEP_CHARS] if partial else ""), **fields)
            return False, error_kind(exc)
        metrics = metrics_from_capture(capture)  # an early end is cut short too, for scoring
        score = score_output(task, capture.text, truncated=cut_short(metrics))
        write("test", status="ok", metrics=metrics, score=score,
              output=capture.text[:OUTPUT_KEEP_CHARS],
              thinking_chars=len(capture.thinking), **fields)
        parts.recorder.flush_platform()
        return True, ""


def interrupted_stop(model: str, exc: OllamaInterrupted, during: str) -> ModelStop:
    """End a model whose request was cut: canceled, or aborted for the robot."""
    if exc.cause == "preempted":
        return ModelStop(ModelStatus.ABORTED, f"preempted during the {during} of {model}: "
                         f"{exc}")
    return ModelStop(ModelStatus.CANCELED, f"canceled during the {during} of {model}")


def error_kind(exc: OllamaError) -> str:
    """Return the error kind a failed request's record carries."""
    if isinstance(exc, ModelNotFound):
        return ErrorKind.MODEL_NOT_FOUND.value
    return getattr(exc, "kind", ErrorKind.ERROR.value)
