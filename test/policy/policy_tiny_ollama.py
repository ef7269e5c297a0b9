"""A tiny stand-in Ollama for backend tests: /api/version, /api/ps, and memory on request."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELD = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/version":
            self._reply({"version": "0.0.0-tiny"})
        elif self.path == "/api/ps":
            self._reply({"models": [{"name": f"block{i}", "size": len(b)}
                                    for i, b in enumerate(HELD)]})
        else:
            self.send_error(404)

    def do_POST(self):
        if self.path.startswith("/hold/"):
            size = int(self.path.rsplit("/", 1)[1])
            block = bytearray(size)
            for i in range(0, size, 4096):
                block[i] = 1  # touch every page so it is really resident
            HELD.append(block)
            self._reply({"held": sum(len(b) for b in HELD)})
        elif self.path == "/free":
            HELD.clear()
            self._reply({"held": 0})
        else:
            self.send_error(404)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
