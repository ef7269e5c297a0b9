"""
An Ollama that hangs where a sick server hangs: run as `python hung_ollama.py PORT`.

/api/version answers (so it looks alive); /api/ps, /api/show and /api/tags never answer; an
unload (keep_alive 0) answers at once; a load never answers; a streamed generate sends two
chunks and then stays silent ("stall") or keeps sending a chunk every 0.2 s ("trickle").
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_S = 600.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, body):
        data = json.dumps(body).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):  # noqa: N802
        if self.path == "/api/version":
            self._json({"version": "0.0-hung"})
        else:
            time.sleep(HANG_S)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path != "/api/generate":
            time.sleep(HANG_S)
            return
        if body.get("keep_alive") == 0 and not body.get("prompt"):
            self._json({"model": body.get("model"), "done": True, "done_reason": "unload"})
            return
        if not body.get("stream"):
            time.sleep(HANG_S)  # a load that never ends
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(2):
            self._chunk({"model": body.get("model"), "response": "word ", "done": False})
        if body.get("model") == "stall":
            time.sleep(HANG_S)
        while True:
            time.sleep(0.2)
            self._chunk({"model": body.get("model"), "response": "more ", "done": False})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()
