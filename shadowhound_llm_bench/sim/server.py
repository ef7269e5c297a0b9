"""The HTTP server: Ollama's API (and /sim/* controls) over the scheduler, on the stdlib only."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, Optional, Tuple

from . import api_shapes, platform_sysfs
from .catalog import ModelSpec, normalise_name
from .faults import FaultError, Faults
from .generation_replies import final_only, final_reply, stream_chunk
from .request_params import (
    BadRequest, GenerationParams, go_json_error, model_field, not_an_object_error,
    parse_generation)
from .scenario import Scenario, scenario_summary
from .scheduler import LoadError, LoadedModel, Scheduler
from .tasks import SuiteKnowledge, recognise_task
from .textgen import answer, inline_text, tokens

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DRAIN_BYTES = 256 * 1024 * 1024
NS = 1_000_000_000
PROMPT_TEMPLATE_TOKENS = 12
SLEEP_BATCH_S = 0.02


class SimServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the simulator's state."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], *, scenario: Scenario, faults: Faults,
                 scheduler: Scheduler, knowledge: SuiteKnowledge, log_requests: bool = True
                 ) -> None:
        super().__init__(address, Handler)
        self.scenario = scenario
        self.faults = faults
        self.scheduler = scheduler
        self.knowledge = knowledge
        self.log_requests = log_requests
        self.catalog_lock = threading.Lock()

    def find_model(self, name: str) -> Optional[ModelSpec]:
        """Return the catalog entry for a name (with or without ':latest')."""
        with self.catalog_lock:
            catalog = self.scenario.catalog
            return catalog.get(name) or catalog.get(normalise_name(name))

    def mark_pulled(self, spec: ModelSpec, pulled: bool) -> None:
        """Record that a model is (or is no longer) on disk."""
        with self.catalog_lock:
            self.scenario.catalog[spec.name] = dataclasses.replace(spec, pulled=pulled)


class Handler(BaseHTTPRequestHandler):
    """One HTTP connection; routes to Ollama's endpoints."""

    protocol_version = 'HTTP/1.1'
    server_version = 'ollama-sim'
    sys_version = ''
    server: SimServer

    # ---- plumbing -------------------------------------------------------------------------
    def end_headers(self) -> None:
        """Mark every reply as the simulator's: its answers and quality scores are scripted."""
        self.send_header(api_shapes.SIMULATOR_HEADER,
                         api_shapes.simulator_header_value(self.server.scenario.memory_model))
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: requests are logged by _log_request in a GIN-like line."""

    def _log_request(self, status: int, started: float) -> None:
        if self.server.log_requests:
            stamp = time.strftime('%Y/%m/%d - %H:%M:%S')
            sys.stderr.write(f'[GIN] {stamp} | {status} | {time.monotonic() - started:9.4f}s | '
                             f'{self.client_address[0]} | {self.command} "{self.path}"\n')

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        if self.close_connection:
            # Say so, or a keep-alive client reuses the closed connection for its next request.
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)
        self._status = status

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, api_shapes.error_body(message))

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)
        self._status = status

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-ndjson')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self._status = 200

    def _stream_line(self, payload: Dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b'\n'
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b'0\r\n\r\n')
        self.wfile.flush()

    def _read_json(self) -> Optional[Dict[str, Any]]:
        """Return the request body as a JSON object, or None after an error reply was sent."""
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            self.close_connection = True
            self._send_error(400, 'chunked request bodies are not supported')
            return None
        try:
            length = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            self.close_connection = True
            self._send_error(400, 'invalid Content-Length')
            return None
        if length > MAX_BODY_BYTES:
            self._drain(length)
            self.close_connection = True
            self._send_error(413, 'http: request body too large')
            return None
        raw = self.rfile.read(length) if length else b''
        if not raw.strip():
            self._send_error(400, 'missing request body')
            return None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_error(400, go_json_error(raw, exc))
            return None
        if not isinstance(body, dict):
            self._send_error(400, not_an_object_error(body))
            return None
        return body

    def _drain(self, length: int) -> None:
        remaining = min(length, MAX_DRAIN_BYTES)
        self.connection.settimeout(5.0)
        try:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def _route(self, routes: Dict[str, Any]) -> None:
        started = time.monotonic()
        self._status = 0
        path = self.path.split('?', 1)[0]
        handler = routes.get(path)
        try:
            if handler is None:
                self._send_text(404, '404 page not found')
            else:
                handler()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # the server must keep serving whatever one request does
            self.close_connection = True
            try:
                self._send_error(500, f'internal error: {exc}')
            except OSError:
                pass
        self._log_request(self._status, started)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """GET routes."""
        self._route({'/': self._root, '/api/version': self._version, '/api/tags': self._tags,
                     '/api/ps': self._ps, '/sim/state': self._sim_state})

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        """HEAD / (liveness, as `ollama` itself checks)."""
        self._route({'/': self._root, '/api/version': self._version})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """POST routes."""
        self._route({'/api/generate': self._generate, '/api/chat': self._chat,
                     '/api/show': self._show, '/api/pull': self._pull,
                     '/sim/faults': self._sim_faults})

    def do_DELETE(self) -> None:  # noqa: N802 - stdlib name
        """DELETE /api/delete."""
        self._route({'/api/delete': self._delete})

    # ---- simple endpoints -----------------------------------------------------------------
    def _root(self) -> None:
        self._send_text(200, 'Ollama is running')

    def _version(self) -> None:
        self._send_json(200, {'version': self.server.scenario.version})

    def _tags(self) -> None:
        with self.server.catalog_lock:
            specs = [s for s in self.server.scenario.catalog.values() if s.pulled]
        self._send_json(200, {'models': [api_shapes.tag_entry(s) for s in specs]})

    def _ps(self) -> None:
        models = [api_shapes.ps_entry(m.spec, size_bytes=m.footprint_bytes, num_ctx=m.num_ctx,
                                      expires_at=m.expires_at, size_vram_bytes=m.vram_bytes)
                  for m in self.server.scheduler.loaded()]
        self._send_json(200, {'models': models})

    def _known_model(self, name: str) -> Optional[ModelSpec]:
        spec = self.server.find_model(name)
        if spec is None or not spec.pulled:
            self._send_error(404, f"model '{name}' not found")
            return None
        return spec

    def _model_request(self) -> Optional[Tuple[Dict[str, Any], str]]:
        """Return the body and its model name, or None after an error reply was sent."""
        body = self._read_json()
        if body is None:
            return None
        try:
            return body, model_field(body)
        except BadRequest as exc:
            self._send_error(400, str(exc))
            return None

    def _show(self) -> None:
        request = self._model_request()
        spec = self._known_model(request[1]) if request else None
        if spec is not None:
            self._send_json(200, api_shapes.show_response(spec))

    def _delete(self) -> None:
        request = self._model_request()
        spec = self._known_model(request[1]) if request else None
        if spec is not None:
            self.server.scheduler.unload(spec.name)
            self.server.mark_pulled(spec, False)
            self._send_json(200, {})

    def _sim_state(self) -> None:
        server = self.server
        self._send_json(200, {
            'scheduler': server.scheduler.state(), 'faults': server.faults.snapshot(),
            'scenario': scenario_summary(server.scenario),
        })

    def _sim_faults(self) -> None:
        body = self._read_json()
        if body is None:
            return
        try:
            self.server.faults.update(body)
        except FaultError as exc:
            self._send_error(400, str(exc))
            return
        self._send_json(200, self.server.faults.snapshot())

    # ---- pull -----------------------------------------------------------------------------
    def _pull(self) -> None:
        request = self._model_request()
        if request is None:
            return
        body, name = request
        stream = body.get('stream', True) is not False
        spec = self.server.find_model(name)
        if spec is None:
            if stream:
                self._start_stream()
                self._stream_line({'status': 'pulling manifest'})
                self._stream_line({'error': 'pull model manifest: file does not exist'})
                self._end_stream()
            else:
                self._send_error(500, 'pull model manifest: file does not exist')
            return
        events = self._pull_events(spec)
        if not stream:
            for _ in events:
                pass
            self._send_json(200, {'status': 'success'})
            return
        self._start_stream()
        for event in events:
            self._stream_line(event)
        self._end_stream()

    def _pull_events(self, spec: ModelSpec) -> Iterator[Dict[str, Any]]:
        scenario = self.server.scenario
        yield {'status': 'pulling manifest'}
        digest = 'sha256:' + spec.digest
        total = spec.size_bytes
        steps = 1 if spec.pulled else 10
        wall_s = 0.0 if spec.pulled else scenario.wall_seconds(total / scenario.pull_bytes_per_s)
        for step in range(1, steps + 1):
            if wall_s:
                time.sleep(wall_s / steps)
            yield {'status': f'pulling {spec.digest[:12]}', 'digest': digest, 'total': total,
                   'completed': total * step // steps}
        yield {'status': 'verifying sha256 digest'}
        yield {'status': 'writing manifest'}
        self.server.mark_pulled(spec, True)
        yield {'status': 'success'}

    # ---- generate and chat ----------------------------------------------------------------
    def _generate(self) -> None:
        self._generation(chat=False)

    def _chat(self) -> None:
        self._generation(chat=True)

    def _generation(self, *, chat: bool) -> None:
        body = self._read_json()
        if body is None:
            return
        try:
            params = parse_generation(body, chat=chat)
        except BadRequest as exc:
            self._send_error(exc.status, str(exc))
            return
        server = self.server
        spec = self._known_model(params.model)
        if spec is None:
            return
        if server.faults.count_request():
            self._send_error(500, 'llama runner process has terminated: error: simulated fault '
                                  f'on request {server.faults.request_count}')
            return
        hang_s = server.faults.hang_s(spec.name)
        if hang_s:
            time.sleep(hang_s)
            self.close_connection = True  # a hung server: the client sees no answer
            self._status = 0
            return
        slow_s = server.faults.slow_s(spec.name)
        if slow_s:
            time.sleep(slow_s)
        scenario = server.scenario
        keep_alive_s = (params.keep_alive_s if params.keep_alive_s is not None
                        else scenario.default_keep_alive_s)
        if params.empty and keep_alive_s == 0:
            server.scheduler.unload(spec.name)
            self._send_final_only(spec, params, chat, 'unload', {})
            return
        num_ctx = params.num_ctx or scenario.default_num_ctx
        started = time.monotonic()
        try:
            model = server.scheduler.acquire(spec, num_ctx=num_ctx)
        except LoadError as exc:
            self._send_error(exc.status, exc.message)
            return
        load_s = model.load_duration_s or 0.002
        try:
            if params.empty:
                # Ollama answers a load with done_reason "load" and no durations at all
                # (server/routes.go, GenerateHandler and ChatHandler, v0.33.0-rc2).
                self._send_final_only(spec, params, chat, 'load', {})
                return
            with model.busy, platform_sysfs.serving(spec.name):
                self._decode(model, params, chat, load_s, started)
        finally:
            server.scheduler.release(model, keep_alive_s)

    def _send_final_only(self, spec: ModelSpec, params: GenerationParams, chat: bool,
                         reason: str, timings: Dict[str, int]) -> None:
        # One application/json object even when streaming was asked for, as the real server
        # answers a load or an unload (routes.go `c.JSON`; v0.12.6 and v0.32.15 recorded).
        self._send_json(200, final_only(spec, chat, reason, timings))

    def _decode(self, model: LoadedModel, params: GenerationParams, chat: bool,
                load_s: float, started: float) -> None:
        server = self.server
        scenario = server.scenario
        spec = model.spec
        guess = recognise_task(params.prompt, server.knowledge)
        result = answer(spec, guess, params.prompt, params.seed)
        separate_thinking = params.think and spec.thinking
        pieces = [('thinking', t) for t in tokens(result.thinking)] if separate_thinking else []
        text = result.content if separate_thinking else inline_text(result)
        pieces += [('content', t) for t in tokens(text)]
        done_reason = 'stop'
        limit = params.num_predict
        if limit is not None and 0 <= limit < len(pieces):
            pieces, done_reason = pieces[:limit], 'length'
        silent_at = server.faults.repeat_limit(spec.name)
        if silent_at is not None and 0 <= silent_at < len(pieces):
            pieces, done_reason = pieces[:silent_at], ''  # no final chunk (llm/server.go)
        prompt_count = min(model.num_ctx, len(tokens(params.prompt)) + PROMPT_TEMPLATE_TOKENS)
        prompt_s = prompt_count / spec.prompt_tokens_per_s
        decode_tps = (spec.decode_tokens_per_s * server.faults.decode_factor()
                      * platform_sysfs.speed_factor())
        token_s = 1.0 / decode_tps
        if params.stream:
            self._start_stream()
        with platform_sysfs.begin('prefill', spec.name):
            time.sleep(scenario.wall_seconds(prompt_s))
        work = platform_sysfs.begin('decode', spec.name, model_bytes=spec.size_bytes,
                                    tokens_per_s=decode_tps)
        pending_wall = 0.0
        for kind, piece in pieces:
            pending_wall += scenario.wall_seconds(token_s)
            if pending_wall >= SLEEP_BATCH_S:
                time.sleep(pending_wall)
                pending_wall = 0.0
            if not model.runner.alive():
                work.end()
                self._runner_died(params)
                return
            if params.stream:
                self._stream_line(stream_chunk(spec, chat, kind, piece))
        if pending_wall:
            time.sleep(pending_wall)
        work.end(tokens=len(pieces))
        eval_s = len(pieces) * token_s
        timings = {
            'total_duration': int((load_s + prompt_s + eval_s + 0.001) * NS),
            'load_duration': int(load_s * NS),
            'prompt_eval_count': prompt_count, 'prompt_eval_duration': int(prompt_s * NS),
            'eval_count': len(pieces), 'eval_duration': int(eval_s * NS),
        }
        final = final_reply(spec, chat, pieces, stream=params.stream, done_reason=done_reason,
                            timings=timings)
        if params.stream:
            if done_reason:
                self._stream_line(final)
            self._end_stream()
        else:
            self._send_json(200, final)

    def _runner_died(self, params: GenerationParams) -> None:
        message = 'an error was encountered while running the model: unexpected EOF'
        if params.stream:
            self._stream_line(api_shapes.error_body(message))
            self._end_stream()
        else:
            self._send_error(500, message)
