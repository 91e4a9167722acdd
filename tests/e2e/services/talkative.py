"""A stand-in for a user's service, run by --app-command: it prints the key it was given (as a
careless service would), answers every POST with a JSON verdict and makes no model call.

    python tests/e2e/services/talkative.py PORT
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"verdict": "benign"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    print(
        f"starting with key {os.environ.get('GEMINI_API_KEY')} for {os.environ.get('GEMINI_BASE_URL')}",
        flush=True,
    )
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
