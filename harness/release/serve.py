"""`harness serve`: a base model (+ adapter) behind an OpenAI-compatible HTTP API, on 127.0.0.1 by default.

Endpoints: `GET /v1/models`, `POST /v1/chat/completions` (messages, max_tokens / max_completion_tokens,
temperature, top_p, seed, stop, n, logprobs, top_logprobs; no streaming). Requests are answered one at a
time (one model, CPU-friendly); the HTTP server itself is threaded, so /v1/models answers while a
generation runs. Bad requests get a 400 with an OpenAI-style error body naming the field.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.core.console import console, status
from harness.core.errors import HarnessError
from harness.core.models import check_adapter, load_tokenizer, resolve_base, tokenizer_dir
from harness.core.runtime import GenParams
from harness.core.runtime.load import Runtimes


class BadRequest(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    n: int
    logprobs: bool
    top_logprobs: int

    @classmethod
    def parse(cls, body: Any, served: str) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if body.get("stream"):
            raise BadRequest("streaming is not supported by harness serve; send stream=false", "stream")
        model = body.get("model")
        if model is not None and model != served:
            raise BadRequest(f"model {model!r} is not served here; this server serves {served!r}", "model")
        msgs = body.get("messages")
        if not (isinstance(msgs, list) and msgs) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs
        ):
            raise BadRequest("messages must be a non-empty list of {role, content} string objects", "messages")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
        if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 4096:
            raise BadRequest("max_tokens must be an integer from 1 to 4096", "max_tokens")
        temperature = body.get("temperature", 1.0)
        top_p = body.get("top_p", 1.0)
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise BadRequest("temperature must be a number from 0 to 2", "temperature")
        if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
            raise BadRequest("top_p must be in (0, 1]", "top_p")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise BadRequest("stop must be a string or a list of strings", "stop")
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 16:
            raise BadRequest("n must be an integer from 1 to 16", "n")
        top = body.get("top_logprobs") or 0
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise BadRequest("top_logprobs must be an integer from 0 to 20", "top_logprobs")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise BadRequest("seed must be an integer", "seed")
        return cls(
            [{"role": m["role"], "content": m["content"]} for m in msgs],
            max_tokens,
            float(temperature),
            float(top_p),
            seed,
            stop,
            n,
            bool(body.get("logprobs")),
            top,
        )


class Generator:
    """The loaded model; `chat()` answers one request (callers serialise on `lock`)."""

    def __init__(self, base: str, adapter: str | None, *, device: str = "auto", dtype: str = "auto"):
        self.base = resolve_base(base, Path.cwd())
        self.adapter = check_adapter(adapter, self.base, key="--adapter") if adapter else None
        load_tokenizer(tokenizer_dir(self.base, self.adapter), need_chat_template=True)  # refuse before loading
        self.runtime = Runtimes(self.base, self.adapter, device=device, dtype=dtype).get(
            "candidate" if self.adapter else "base"
        )
        self.tok = self.runtime.tok
        self.lock = threading.Lock()

    def chat(self, req: ChatRequest) -> tuple[list[dict[str, Any]], dict[str, int]]:
        import random

        ids = self.runtime.encode(req.messages)
        choices, completion_tokens = [], 0
        for i in range(req.n):  # one generation per choice, seeded seed + i: choice i does not depend on n
            params = GenParams(
                temperature=req.temperature,
                top_p=req.top_p,
                max_new_tokens=req.max_tokens,
                seed=req.seed + i if req.seed is not None else random.randrange(2**31),
                stop=tuple(req.stop),
                logprobs=req.logprobs,
                top_logprobs=req.top_logprobs,
            )
            c = self.runtime.generate_one(ids, params)
            completion_tokens += len(c.token_ids)
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": c.text},
                    "finish_reason": c.finish_reason,
                    "logprobs": {"content": c.logprobs} if req.logprobs else None,
                }
            )
        usage = {
            "prompt_tokens": len(ids),
            "completion_tokens": completion_tokens,
            "total_tokens": len(ids) + completion_tokens,
        }
        return choices, usage


def make_server(gen: Generator, name: str, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    created = int(time.time())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request at most
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
            self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": None}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": name, "object": "model", "created": created, "owned_by": "harness"}],
                    },
                )
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}; try /v1/models or POST /v1/chat/completions")

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}; POST /v1/chat/completions")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                req = ChatRequest.parse(body, name)
            except json.JSONDecodeError as e:
                self._error(400, f"the body is not valid JSON: {e.msg}")
                return
            except BadRequest as e:
                self._error(400, str(e), e.param)
                return
            try:
                with gen.lock:
                    choices, usage = gen.chat(req)
            except Exception as e:  # the server keeps serving; the client sees a 500 it may retry
                self._error(500, f"generation failed: {type(e).__name__}: {e}", kind="server_error")
                return
            self._send(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": name,
                    "choices": choices,
                    "usage": usage,
                },
            )

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        raise HarnessError(
            f"cannot listen on {host}:{port} ({e.strerror})", where="--host/--port", fix="choose a free --port"
        ) from None


def serve(base: str, adapter: str | None, *, host: str, port: int, name: str | None = None) -> None:
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning[/]: listening on {host}: anyone who can reach it can use the model")
    with status(f"Loading {base}" + (f" + {adapter}" if adapter else "")):
        gen = Generator(base, adapter)
    served = name or (Path(adapter).name if adapter else base)
    server = make_server(gen, served, host, port)
    h, p = server.server_address[:2]
    # the line tests and scripts wait for: the URL clients use as base_url
    print(f"serving {served!r} on http://{h}:{p}/v1 (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
