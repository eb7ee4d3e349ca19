"""hello_world: the playground's HTTP service.

Binds 0.0.0.0:$PAASTA_PORT (8888 when unset, PaaSTA's container port), answers `/health` for the
readiness/liveness probe and `/` with a greeting that names the deployed version, so a bounce is
visible with curl and in `paasta logs`. Standard library only: the image stays tiny.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PAASTA_PORT", "8888"))


def describe() -> dict[str, str]:
    keys = ("PAASTA_SERVICE", "PAASTA_INSTANCE", "PAASTA_CLUSTER", "PAASTA_GIT_SHA", "GREETING")
    return {key: os.environ.get(key, "") for key in keys}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, {"status": "ok"})
        elif self.path == "/":
            self.reply(200, describe())
        else:
            self.reply(404, {"error": f"no such path {self.path}"})

    def reply(self, code: int, body: dict[str, str]) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # One line per request on stdout, so `paasta logs` has something to show.
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"hello_world listening on :{PORT} version={os.environ.get('PAASTA_GIT_SHA', '?')}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
