"""A fault-injecting HTTP proxy on loopback: forwards to a real server, answering some requests with an error.

`faults` are the statuses given to the first POSTs in turn (then every request goes through); after
`die_after` forwarded POSTs every further request gets a 500 (an endpoint that dies mid-run).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str, faults: tuple[int, ...] = (), die_after: int | None = None):
        self.upstream = upstream.rstrip("/")
        self.root = self.upstream.removesuffix("/v1")  # requests keep their /v1/... path
        self.faults = list(faults)
        self.die_after = die_after
        self.injected: list[int] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                with proxy._lock:
                    fault = None
                    if method == "POST":
                        if proxy.faults:
                            fault = proxy.faults.pop(0)
                        elif proxy.die_after is not None and proxy.forwarded >= proxy.die_after:
                            fault = 500
                        else:
                            proxy.forwarded += 1
                    if fault is not None:
                        proxy.injected.append(fault)
                if fault is not None:
                    msg = {"error": {"message": f"injected {fault}", "type": "injected", "code": fault}}
                    return self._send(fault, json.dumps(msg).encode())
                req = urllib.request.Request(
                    proxy.root + self.path,
                    data=body,
                    method=method,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        self._send(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
                except urllib.error.HTTPError as e:
                    self._send(e.code, e.read())

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
