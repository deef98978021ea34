"""Judge backends: an OpenAI-compatible endpoint (vLLM, TGI, llama.cpp server, `harness serve`, OpenAI) or a
local transformers model. Both answer one prompt at a time, greedily (temperature 0, seed recorded), either
as text or, when asked for a choice among options, as the probability of each option's token.

The API key is read from the environment variable the config names and goes only into the client's
request headers: never into an identity, a cache key, an error message or a log line.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from harness.core.console import status
from harness.core.errors import HarnessError
from harness.core.models import fingerprint, resolve_base
from harness.core.runtime import GenParams
from harness.core.runtime.load import open_model
from harness.core.runtime.openai import api_key, served_models


@dataclass(frozen=True)
class Reply:
    text: str
    probs: dict[str, float] | None = None  # option -> probability, renormalised over the options

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "probs": self.probs}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reply:
        return cls(d["text"], d.get("probs"))


class JudgeEndpointError(RuntimeError):
    """The endpoint stopped answering mid-run (after the client's retries)."""


class Backend(Protocol):
    concurrency: int
    logprobs: bool

    def identity(self) -> dict[str, Any]: ...  # what makes a judgement (cache key; no secrets)

    def check(self) -> None: ...  # reachable and serving the model, else HarnessError

    def ask(self, prompt: str, *, options: tuple[str, ...] | None, max_tokens: int, seed: int) -> Reply: ...


def option_probs(top: dict[str, float], options: tuple[str, ...]) -> dict[str, float] | None:
    """Renormalised probabilities of `options` among the first token's log-probabilities (token text
    stripped of whitespace); None when no option is among them."""
    mass = {o: 0.0 for o in options}
    for token, logprob in top.items():
        key = token.strip()
        if key in mass:
            mass[key] += math.exp(logprob)
    total = sum(mass.values())
    return {o: v / total for o, v in mass.items()} if total > 0 else None


class OpenAIBackend:
    """Any OpenAI-compatible `/v1/chat/completions` endpoint through the `openai` client. The client retries
    429, 408, 409, 5xx and connection errors with exponential backoff (honouring Retry-After)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None,
        timeout: float,
        retries: int,
        concurrency: int,
        logprobs: bool,
        where: str = "[gates.judge]",
    ):
        import openai

        self.base_url, self.model, self.where = base_url.rstrip("/"), model, where
        self.concurrency, self.logprobs = concurrency, logprobs

        key = api_key(api_key_env, where)  # vLLM, llama.cpp and `harness serve` need none
        self._openai = openai
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=retries)

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": self.base_url, "model": self.model}

    def check(self) -> None:
        served = list(served_models(self.client, self.base_url, self.where, "judge endpoint"))
        if served and self.model not in served:
            raise HarnessError(
                f"the judge endpoint does not serve model {self.model!r} (it serves {', '.join(served)})",
                where=f"{self.where} model",
                fix=f"set model to one of: {', '.join(served)}",
            )

    def ask(self, prompt: str, *, options: tuple[str, ...] | None, max_tokens: int, seed: int) -> Reply:
        oa = self._openai
        want_probs = bool(options) and self.logprobs
        try:
            resp = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                seed=seed,
                max_tokens=max_tokens,
                **({"logprobs": True, "top_logprobs": 20} if want_probs else {}),
            )
        except (oa.APIConnectionError, oa.InternalServerError, oa.RateLimitError, oa.APITimeoutError) as e:
            raise JudgeEndpointError(
                f"judge endpoint {self.base_url} stopped answering ({type(e).__name__}) after the client's retries"
            ) from None
        choice = resp.choices[0]
        text = choice.message.content or ""
        probs = None
        if want_probs and choice.logprobs and choice.logprobs.content:
            first = choice.logprobs.content[0]
            top = {t.token: t.logprob for t in (first.top_logprobs or [])} or {first.token: first.logprob}
            probs = option_probs(top, options or ())
        return Reply(text, probs)


class HFBackend:
    """A local transformers model as judge. With options, the preference is read from the next-token
    distribution after the rendered prompt (one forward pass); without, the model answers greedily."""

    concurrency = 1

    def __init__(self, model: str, *, base_dir: Any = None, device: str = "auto", dtype: str = "auto"):
        self.spec, self.base_dir, self.device, self.dtype = model, base_dir, device, dtype
        self.logprobs = True
        self._runtime: Any = None
        self._lock = threading.Lock()

        self.base = resolve_base(model, base_dir)
        self._fp = fingerprint(self.base).key

    def identity(self) -> dict[str, Any]:
        return {"backend": "hf", "model": self.spec, "fingerprint": self._fp}

    def check(self) -> None:
        pass  # resolving the model in __init__ already refused a missing one

    def _load(self) -> Any:
        if self._runtime is None:
            with status(f"Loading judge model {self.spec}"):
                self._runtime = open_model(self.spec, self.base_dir, device=self.device, dtype=self.dtype)
        return self._runtime

    def ask(self, prompt: str, *, options: tuple[str, ...] | None, max_tokens: int, seed: int) -> Reply:
        import torch

        with self._lock:
            rt = self._load()
            tok = rt.tok
            conv = [{"role": "user", "content": prompt}]
            if options:
                logp = torch.log_softmax(rt.logits(rt.encode(conv))[-1], dim=-1)
                ids = {o: tok.encode(o, add_special_tokens=False)[0] for o in options}
                top = {o: float(logp[i]) for o, i in ids.items()}
                probs = option_probs(top, options)
                best = max(probs, key=probs.__getitem__) if probs else ""
                return Reply(best, probs)
            return Reply(rt.generate_one(conv, GenParams(max_new_tokens=max_tokens, seed=seed)).text)
