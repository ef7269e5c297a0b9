"""
A real HTTP server speaking Ollama's NDJSON, scripted per model name.

It produces the faults the simulator does not: an error line inside a stream, an empty answer,
a stall, a stream without done.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FINAL = {"done": True, "done_reason": "stop", "total_duration": 10_000_000,
         "load_duration": 1_000_000, "prompt_eval_count": 5, "prompt_eval_duration": 1_000_000,
         "eval_count": 3, "eval_duration": 30_000_000}
MODELS = ("good", "stream_error", "empty", "stall", "no_done", "http_503")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path == "/api/version":
            self._json(200, {"version": "0.0-scripted"})
        elif self.path == "/api/tags":
            self._json(200, {"models": [
                {"name": m, "model": m, "size": 1000, "digest": "d" * 64,
                 "details": {"quantization_level": "Q4_0", "parameter_size": "1B"}}
                for m in MODELS]})
        elif self.path == "/api/ps":
            self._json(200, {"models": []})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        model = body.get("model", "")
        if self.path == "/api/show":
            if model not in MODELS:
                self._json(404, {"error": f"model '{model}' not found"})
            else:
                self._json(200, {"details": {"family": "test"}, "model_info": {}})
            return
        if self.path != "/api/generate":
            self._json(404, {"error": "not found"})
            return
        if model not in MODELS:
            self._json(404, {"error": f"model '{model}' not found"})
            return
        if not body.get("prompt"):
            self._json(200, dict(FINAL, model=model, response="", done_reason="load"))
            return
        if model == "http_503":
            self._json(503, {"error": "server busy"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def line(obj):
            self.wfile.write((json.dumps(obj) + "\n").encode())
            self.wfile.flush()

        if model == "good":
            for piece in ("Answer", ":", " D"):
                line({"model": model, "response": piece, "done": False})
            line(dict(FINAL, model=model, response=""))
        elif model == "stream_error":
            line({"model": model, "response": "Ans", "done": False})
            line({"error": "llama runner process has terminated: signal: killed"})
        elif model == "empty":
            line(dict(FINAL, model=model, response="", eval_count=0))
        elif model == "stall":
            line({"model": model, "response": "A", "done": False})
            time.sleep(3.0)
        elif model == "no_done":
            line({"model": model, "response": "A", "done": False})


class ScriptedOllama:
    """Serves on 127.0.0.1 at a free port in a background thread."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
