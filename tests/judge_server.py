"""A scripted OpenAI-compatible judge: a real HTTP server on 127.0.0.1 whose replies follow a rule, for
testing the judge's protocol and fault handling (position bias, 429s, malformed output, a dying endpoint,
the API key) without a model. `harness serve` is the real-model endpoint; this one is deterministic."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_A = re.compile(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]\n(.*?)\n\n(?:Explain|Which)", re.S)


def answers(prompt: str) -> tuple[str, str]:
    m = _A.search(prompt)
    assert m, prompt
    return m.group(1), m.group(2)


def always_a(prompt: str, n: int) -> str:
    return "A is better. [[A]]" if "[Answer A]" in prompt else "Fine. Score: 3"


def prefers_longer(prompt: str, n: int) -> str:
    if "[Answer A]" not in prompt:
        return "Score: 4"
    a, b = answers(prompt)
    return "Longer. [[A]]" if len(a) > len(b) else "Longer. [[B]]" if len(b) > len(a) else "Same. [[C]]"


class ScriptedJudge:
    """`rule(prompt, request_number) -> reply text`. Options: `status_first` answers the first chat request
    with that HTTP status; `die_after` stops the server after that many chat requests; `key` requires
    `Authorization: Bearer <key>`."""

    def __init__(
        self,
        rule: Callable[[str, int], str],
        *,
        model: str = "scripted-judge",
        status_first: int | None = None,
        die_after: int | None = None,
        key: str | None = None,
        port: int = 0,
    ):
        self.rule, self.model, self.status_first, self.die_after, self.key = rule, model, status_first, die_after, key
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if judge.key and self.headers.get("Authorization") != f"Bearer {judge.key}":
                    self._send(401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
                    return False
                return True

            def do_GET(self) -> None:
                if self._authorised():
                    self._send(200, {"object": "list", "data": [{"id": judge.model, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if not self._authorised():
                    return
                with judge._lock:
                    judge.requests.append(body)
                    n = len(judge.requests)
                if judge.die_after is not None and n > judge.die_after:
                    judge.statuses.append(-1)
                    threading.Thread(target=judge.die, daemon=True).start()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the endpoint dies: no answer at all
                    return
                if n == 1 and judge.status_first:
                    judge.statuses.append(judge.status_first)
                    self._send(
                        judge.status_first,
                        {"error": {"message": "slow down", "type": "rate_limit"}},
                        {"retry-after-ms": "50"},
                    )
                    return
                judge.statuses.append(200)
                text = judge.rule(body["messages"][-1]["content"], n)
                self._send(
                    200,
                    {
                        "id": f"c{n}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": judge.model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def die(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # later connections are refused

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def chat_requests(self) -> int:
        return len(self.requests)

    def __enter__(self) -> ScriptedJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
