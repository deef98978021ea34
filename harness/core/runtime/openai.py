"""`openai`: a model behind an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama) as a runtime.

Generation goes through `/v1/chat/completions` (conversations: the server applies the chat template) or
`/v1/completions` (token ids); log-likelihoods through `/v1/completions` with vLLM's `prompt_logprobs`, or
`echo` + `logprobs` where that is what the server offers (`loglik_mode`, found at preflight). Requests run
concurrently up to `max_concurrency`; the `openai` client retries 429, 408, 409, 5xx and connection errors
with exponential backoff. A request that still fails raises `EndpointError`, naming the endpoint and the
status: the measurement fails and its gate is an `error`, never a pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from harness.core.chat import end_of_turn_ids
from harness.core.console import progress
from harness.core.errors import NOT_AN_ENV_NAME, HarnessError, is_env_name
from harness.core.models import load_tokenizer, tokenizer_dir
from harness.core.runtime.base import (
    Completion,
    GenParams,
    Identity,
    LoglikRequest,
    Prompt,
    encode_prompt,
    truncate_at_stop,
)
from harness.core.runtime.registry import Backend, Setup, backend


class EndpointError(RuntimeError):
    """The server did not answer a request after every retry."""


def api_key(api_key_env: str | None, where: str) -> str:
    """The key from the environment variable named in the config (servers such as vLLM need none)."""
    if not api_key_env:
        return "not-needed"
    if not is_env_name(api_key_env):
        raise HarnessError(f"api_key_env {NOT_AN_ENV_NAME}", where=f"{where} api_key_env")
    key = os.environ.get(api_key_env, "")
    if not key:
        raise HarnessError(
            f"the API key variable {api_key_env} is not set",
            where=f"{where} api_key_env",
            fix=f"export {api_key_env}=... before running (the key is read only from the environment)",
        )
    return key


class OpenAIRuntime:
    def __init__(
        self,
        *,
        base_url: str,
        served: str,
        tokenizer: Any,
        identity: Identity,
        api_key_env: str | None = None,
        max_concurrency: int = 32,
        timeout: float = 300.0,
        retries: int = 4,
        loglik_mode: str = "prompt_logprobs",
        send_seed: bool = True,
        where: str = "[model]",
        progress: bool = True,
    ):
        import openai

        self.base_url, self.served, self.tok, self.where = base_url.rstrip("/"), served, tokenizer, where
        self.max_concurrency, self.loglik_mode = max_concurrency, loglik_mode
        self.loglik_concurrency = 1
        self.send_seed = send_seed
        self._identity, self._progress, self._openai = identity, progress, openai
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key(api_key_env, where), timeout=timeout, max_retries=retries
        )

    # -- protocol ---------------------------------------------------------------------------------
    def identity(self) -> Identity:
        return self._identity

    def close(self) -> None:
        self.client.close()

    def context_length(self) -> int | None:
        """The server's `max_model_len` for this name (an adapter's is its parent's), less the one token a
        log-likelihood request generates."""
        try:
            models = {m.id: (m.model_extra or {}) for m in self.client.models.list()}
        except self._openai.OpenAIError:
            return None
        m = models.get(self.served) or {}
        n = m.get("max_model_len") or (models.get(m.get("parent")) or {}).get("max_model_len")
        return n - 1 if n else None

    def logits(self, ids: Sequence[int]) -> Any:
        raise NotImplementedError(
            f"{self.base_url} serves log-probabilities, not full logits: merge and GGUF parity run on local "
            "variants (backend hf)"
        )

    def generate(
        self, prompts: Sequence[Prompt], params: GenParams, *, batch_size: int = 64, description: str | None = None
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt (greedy: one asked, copied n times), requests in flight at once up
        to `max_concurrency`; `batch_size` is the in-process engines' and is not used here."""
        greedy = params.temperature == 0
        n = 1 if greedy else params.n
        outs = self._map(lambda p: self._generate(p, params, n), prompts, description or "generating")
        return [o * params.n if greedy else o for o in outs]

    def generate_one(self, prompt: Prompt, params: GenParams) -> Completion:
        return self._generate(prompt, params, 1)[0]

    def loglik(
        self, requests: Sequence[LoglikRequest], *, batch_size: int = 8, description: str | None = None
    ) -> list[float]:
        """One request in flight at a time: vLLM 0.32 with --enable-lora kills its engine when it batches
        prompt-log-probability requests together (an einsum shape error in the LoRA logits processor, seen here
        on CPU with 32 in flight); scoring is one forward pass a request, so serial costs little."""
        return self._map(self._loglik, requests, description or "scoring", workers=self.loglik_concurrency)

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tok, prompt)

    # -- requests ---------------------------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any], description: str, workers: int = 0) -> list[Any]:
        workers = workers or self.max_concurrency
        with progress(disable=not self._progress) as bar, ThreadPoolExecutor(workers) as pool:
            task = bar.add_task(f"{description} ({self.served} at {self.base_url})", total=len(items))
            futures = [pool.submit(fn, x) for x in items]
            out = []
            try:
                for f in futures:
                    out.append(f.result())
                    bar.advance(task)
            except BaseException:
                for f in futures:  # one request failed after its retries: the rest are not sent
                    f.cancel()
                raise
        return out

    def _call(self, create: Callable[..., Any], **kw: Any) -> Any:
        oa = self._openai
        # vLLM's CPU build kills its engine on seeded sampling requests ("CPU Generator does not use offset": with
        # top_p < 1, or several batched together): say so when such a request is the one that failed
        hint = (
            " (if this is vLLM on a CPU: its engine dies on seeded sampling requests; set [model] send_seed = false)"
            if kw.get("seed") is not None
            else ""
        )
        try:
            return create(model=self.served, **kw)
        except oa.APIStatusError as e:
            raise EndpointError(
                f"{self.base_url} answered {e.status_code} for {self.served!r} after retries: {str(e)[:300]}{hint}"
            ) from None
        except (oa.APIConnectionError, oa.APITimeoutError) as e:
            raise EndpointError(f"{self.base_url} stopped answering ({type(e).__name__}) after retries{hint}") from None

    def _sampling(self, params: GenParams, n: int) -> dict[str, Any]:
        kw: dict[str, Any] = {"n": n, "max_tokens": params.max_new_tokens, "temperature": params.temperature}
        extra: dict[str, Any] = {}
        if params.temperature > 0:
            kw["top_p"] = params.top_p
            if self.send_seed:
                kw["seed"] = params.seed
        if params.stop:
            kw["stop"] = list(params.stop)
        if params.min_new_tokens:
            extra["min_tokens"] = params.min_new_tokens
        if isinstance(params.eos, tuple):
            extra["stop_token_ids"] = list(params.eos)
        extra["return_token_ids"] = True  # vLLM: the generated ids; other servers ignore it (ids re-encoded)
        if extra:
            kw["extra_body"] = extra
        return kw

    def _generate(self, prompt: Prompt, params: GenParams, n: int) -> list[Completion]:
        kw = self._sampling(params, n)
        if prompt and isinstance(prompt[0], dict):
            resp = self._call(self.client.chat.completions.create, messages=list(prompt), **kw)
            texts = [(c.message.content or "", c) for c in resp.choices]
        else:
            resp = self._call(self.client.completions.create, prompt=list(prompt), **kw)
            texts = [(c.text or "", c) for c in resp.choices]
        return [self._completion(text, choice, params) for text, choice in sorted(texts, key=lambda t: t[1].index)]

    def _completion(self, text: str, choice: Any, params: GenParams) -> Completion:
        extra = choice.model_extra or {}
        ids = extra.get("token_ids")
        reason = "length" if choice.finish_reason == "length" else "stop"
        if ids is None:  # a server that does not return ids: the answer's tokens in the local tokenizer
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
        ids = tuple(int(i) for i in ids)
        ended = reason == "stop" and bool(ids) and ids[-1] in set(self._eos_ids())
        cut = truncate_at_stop(text, params.stop)
        return Completion(cut, ids, reason, text, len(ids) - ended)

    def _eos_ids(self) -> list[int]:
        return sorted(end_of_turn_ids(self.tok))

    def _loglik(self, req: LoglikRequest) -> float:
        if self.loglik_mode == "prompt_logprobs":
            resp = self._call(
                self.client.completions.create,
                prompt=list(req.ids),
                max_tokens=1,
                temperature=0,
                extra_body={"prompt_logprobs": 0},
            )
            rows = (resp.choices[0].model_extra or {}).get("prompt_logprobs") or []
            if len(rows) != len(req.ids):
                raise EndpointError(f"{self.base_url} returned {len(rows)} prompt log-probabilities for {len(req.ids)}")
            total = 0.0
            for i, scored in enumerate(req.scored):
                if scored:
                    total += float(rows[i + 1][str(req.ids[i + 1])]["logprob"])
            return total
        resp = self._call(
            self.client.completions.create, prompt=list(req.ids), max_tokens=0, echo=True, logprobs=0, temperature=0
        )
        lps = resp.choices[0].logprobs.token_logprobs
        return float(sum(lps[i + 1] for i, scored in enumerate(req.scored) if scored))


# -- preflight: before any gate runs ------------------------------------------------------------------------

PROBE_TEXTS = (
    "The payments API returned 503 errors at 09:41 for ten minutes.",
    "Ünïcödé, emoji 🚀 and CJK 漢字, tabs\tand\nnew lines",
    '{"severity": "high", "category": "outage"}',
)


def served_models(
    client: Any, base_url: str, where: str, what: str = "model server", url_key: str = "base_url"
) -> dict[str, Any]:
    """The server's `/v1/models` by id; an unreachable server or a rejected key is a HarnessError naming the key."""
    import openai

    try:
        return {m.id: m for m in client.models.list()}
    except openai.AuthenticationError:
        raise HarnessError(
            f"the {what} rejected the API key",
            where=f"{base_url} ({where} api_key_env)",
            fix="check the key in the environment variable named by api_key_env",
        ) from None
    except (openai.APIConnectionError, openai.APIStatusError) as e:
        raise HarnessError(
            f"the {what} at {base_url} is unreachable ({type(e).__name__})",
            where=f"{base_url} ({where} {url_key})",
            fix=f"start the server (vLLM: `harness serve --vllm ...` prints the lines to use) or correct {url_key} "
            "(it ends in /v1)",
        ) from None


def _root(base_url: str) -> str:
    """The server's root (vLLM's /tokenize lives beside /v1)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def preflight(
    *,
    base_url: str,
    served_base: str,
    served_candidate: str,
    tokenizer: Any,
    candidate_url: str | None = None,
    api_key_env: str | None = None,
    timeout: float = 60.0,
    needs_loglik: bool = True,
    where: str = "[model]",
    served_reference: str | None = None,
    reference_url: str | None = None,
) -> dict[str, Any]:
    """Check the server(s) before any gate runs; every failure is a HarnessError (exit 2) naming the key and the fix.

    The base answers at `base_url`, the candidate at `candidate_url` (default: the same server). For each:
    - it answers and lists the served name (`/v1/models`; vLLM gives the adapter's `parent`);
    - it tokenises like the local tokenizer (vLLM's `/tokenize`), so token counts and bits per byte mean the same;
    - it gives log-probabilities (`prompt_logprobs`, else `echo` + `logprobs`), when a gate needs them.
    Then the candidate is really the adapter: its log-probabilities on a probe text differ from the base's. With
    `served_reference` (the reference is not the base: e.g. last release's LoRA), the reference at `reference_url`
    (default: base_url) is checked the same way, and must differ from both the base and the candidate.
    Returns what was found, by variant: the model's id, root and parent, the tokenizer check, the log-likelihood
    mode; the `base` variant is the reference when there is one (the bare base is under `bare`)."""
    import openai

    key = api_key(api_key_env, where)
    ends = {
        "base": (base_url, served_base, "served_base", "base_url"),
        "candidate": (candidate_url or base_url, served_candidate, "served_candidate",
                      "candidate_base_url" if candidate_url else "base_url"),
    }  # fmt: skip
    if served_reference:
        ends["reference"] = (reference_url or base_url, served_reference, "served_reference",
                             "reference_base_url" if reference_url else "base_url")  # fmt: skip
    ids = tokenizer(PROBE_TEXTS[0], add_special_tokens=False)["input_ids"]
    found: dict[str, Any] = {"models": {}, "loglik": {}}
    servers: dict[str, tuple[Any, dict[str, Any]]] = {}  # url -> client, /v1/models: one server is asked once
    checks: dict[str, tuple[bool | None, str | None]] = {}  # url -> tokenizer parity, log-likelihood mode
    for variant, (url, name, name_key, url_key) in ends.items():
        if url not in servers:
            client = openai.OpenAI(base_url=url.rstrip("/"), api_key=key, timeout=timeout, max_retries=1)
            servers[url] = (client, served_models(client, url, where, url_key=url_key))
        client, models = servers[url]
        if name not in models:
            raise HarnessError(
                f"the server at {url} ({url_key}) does not serve {name!r} "
                f"(it serves {', '.join(sorted(models)) or 'nothing'})",
                where=f"{where} {name_key}",
                fix=f"set {name_key} to one of: {', '.join(sorted(models))}"
                + (f" (vLLM: the {variant} is a --lora-modules NAME)" if variant != "base" else "")
                + f", or point {url_key} at the server that serves {name!r}",
            )
        if url not in checks:
            parity = _tokenize_parity(url, name, key, tokenizer, timeout, where)
            checks[url] = (parity, _loglik_mode(client, name, ids))
        info = {k: (models[name].model_extra or {}).get(k) for k in ("root", "parent", "max_model_len")}
        info["tokenizer_checked"], mode = checks[url]
        found["models"][variant] = info
        if mode is None and needs_loglik:
            raise HarnessError(
                f"the server at {url} gives no prompt log-probabilities (neither prompt_logprobs nor "
                "echo + logprobs), so perplexity cannot be measured through it",
                where=f"{where} {url_key}",
                fix='serve with vLLM (prefix caching off: --no-enable-prefix-caching), or use backend = "hf"',
            )
        found["loglik"][variant] = mode

    def runtime(variant: str) -> OpenAIRuntime:
        url, name = ends[variant][:2]
        return OpenAIRuntime(
            base_url=url, served=name, tokenizer=tokenizer, identity=Identity("openai", name),
            api_key_env=api_key_env, timeout=timeout, loglik_mode=found["loglik"][variant] or "echo",
            progress=False, where=where,
        )  # fmt: skip

    # the adapter really applied: a serving stack that answers the adapter's name with the base model is caught
    if all(found["loglik"].values()):
        probe = [LoglikRequest(list(ids), [True] * (len(ids) - 1))]
        outs = {v: runtime(v).loglik(probe)[0] for v in ends}
        what = {v: f"the same log-probability ({outs[v]:.4f}) on a probe text" for v in ends}

        def same(a: str, b: str) -> bool:
            return abs(outs[a] - outs[b]) < 1e-4
    else:
        convs = [[{"role": "user", "content": t}] for t in PROBE_TEXTS]
        params = GenParams(max_new_tokens=16)
        outs = {v: [c[0].text for c in runtime(v).generate(convs, params)] for v in ends}
        what = {v: f"the same greedy answers to {len(convs)} probe prompts" for v in ends}

        def same(a: str, b: str) -> bool:
            return outs[a] == outs[b]

    pairs = [("candidate", "base")] + ([("reference", "base"), ("candidate", "reference")] if served_reference else [])
    for v, other in pairs:
        if same(v, other):
            name, key_name = ends[v][1], ends[v][2]
            raise HarnessError(
                f"the server answered the {v} with the {other} model: {name!r} and {ends[other][1]!r} give {what[v]}",
                where=f"{where} {key_name}",
                fix="serve the adapter (vLLM: --enable-lora --lora-modules NAME=ADAPTER_DIR) and name it here"
                if other == "base"
                else "the reference and the candidate must be different models: check both served names",
            )
    if served_reference:  # the reference answers for the `base` variant of every measurement
        for part in ("models", "loglik"):
            found[part]["bare"] = found[part]["base"]
            found[part]["base"] = found[part].pop("reference")
    return found


def _tokenize_parity(base_url: str, served: str, key: str, tokenizer: Any, timeout: float, where: str) -> bool | None:
    """Does the server tokenise the probe texts as the local tokenizer does? None: it has no /tokenize."""
    import json
    import urllib.error
    import urllib.request

    for text in PROBE_TEXTS:
        body = json.dumps({"model": served, "prompt": text, "add_special_tokens": False}).encode()
        req = urllib.request.Request(
            f"{_root(base_url)}/tokenize",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                theirs = json.loads(r.read())["tokens"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None  # the server cannot say: the report states it was not checked
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        if list(theirs) != list(ours):
            raise HarnessError(
                f"the server tokenises differently from the local tokenizer ({text!r}: {len(theirs)} tokens there, "
                f"{len(ours)} here), so token counts and bits per byte would not mean the same",
                where=f"{where} base",
                fix="set [model] base to the model the server serves (the same tokenizer files)",
            )
    return True


def _loglik_mode(client: Any, served: str, ids: list[int]) -> str | None:
    import openai

    try:
        r = client.completions.create(
            model=served, prompt=ids, max_tokens=1, temperature=0, extra_body={"prompt_logprobs": 0}
        )
        rows = (r.choices[0].model_extra or {}).get("prompt_logprobs")
        if rows and len(rows) == len(ids):
            return "prompt_logprobs"
    except openai.APIStatusError:
        pass
    try:
        r = client.completions.create(model=served, prompt=ids, max_tokens=0, echo=True, logprobs=0, temperature=0)
        lp = r.choices[0].logprobs
        if lp and lp.token_logprobs and len(lp.token_logprobs) >= len(ids):
            return "echo"
    except openai.APIStatusError:
        pass
    return None


# -- the backend ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAIOptions:
    """The [model] keys of `backend = "openai"`."""

    base_url: str = field(metadata={"help": "the server's URL, e.g. http://host:8000/v1"})
    served_base: str = field(metadata={"help": "the name the server answers the base to"})
    served_candidate: str = field(metadata={"help": "the candidate's served name (vLLM: the --lora-modules NAME)"})
    candidate_base_url: str | None = field(
        default=None,
        metadata={"help": "the candidate's server, when it is not base_url's (variants on other machines)"},
    )
    served_reference: str | None = field(
        default=None,
        metadata={"help": "the reference's served name, when reference is not the base (e.g. v1's LoRA)"},
    )
    reference_base_url: str | None = field(
        default=None, metadata={"help": "the reference's server, when it is not base_url's"}
    )
    api_key_env: str | None = field(
        default=None, metadata={"help": "environment variable holding the API key (never written anywhere)"}
    )
    max_concurrency: int = field(default=32, metadata={"help": "requests in flight at once"})
    timeout: float = field(default=300.0, metadata={"help": "seconds per request before it is retried"})
    send_seed: bool = field(
        default=True,
        metadata={"help": "send sampling seeds (false for vLLM's CPU build, whose engine dies on them)"},
    )

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError([("max_concurrency", "must be at least 1")])


@dataclass(frozen=True)
class Served:
    """Reference and candidate behind OpenAI-compatible servers. The reference is the base (`served_base`) unless
    `served_reference` names it (e.g. last release's LoRA on the same server, or on `reference_url`'s)."""

    base_url: str
    served_base: str
    served_candidate: str
    api_key_env: str | None = None
    max_concurrency: int = 32
    timeout: float = 300.0
    send_seed: bool = True  # per-request sampling seeds (vLLM's CPU build dies on them: false there)
    candidate_url: str | None = None  # the candidate's server, when it is not base_url's
    served_reference: str | None = None  # the reference's served name, when the reference is not the base
    reference_url: str | None = None  # the reference's server, when it is not base_url's
    # what each server offers for log-likelihoods (found at preflight): variant -> prompt_logprobs | echo
    loglik: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    models: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # variant -> id, root, parent

    def name(self, variant: str) -> str:
        return self.served_candidate if variant == "candidate" else (self.served_reference or self.served_base)

    def url(self, variant: str) -> str:
        if variant == "candidate":
            return self.candidate_url or self.base_url
        return (self.reference_url or self.base_url) if self.served_reference else self.base_url


@backend("openai")
class OpenAIBackend(Backend):
    """Reference and candidate behind OpenAI-compatible servers (vLLM, SGLang, llama.cpp's server, Ollama),
    checked before any gate runs (`preflight`)."""

    help = "An OpenAI-compatible server, e.g. vLLM (see docs/scale.md)"
    Options = OpenAIOptions

    @classmethod
    def validate(cls, options: Any, *, reference: str) -> list[tuple[str, str]]:
        if reference != "base" and options is not None and not options.served_reference:
            return [
                (
                    "served_reference",
                    'is required with backend = "openai" when reference is not "base": the name the server '
                    "answers the reference to",
                )
            ]
        return []

    @classmethod
    def prepare(cls, setup: Setup) -> Served:
        o: OpenAIOptions = setup.options
        served = Served(
            o.base_url,
            o.served_base,
            o.served_candidate,
            api_key_env=o.api_key_env,
            max_concurrency=o.max_concurrency,
            timeout=o.timeout,
            send_seed=o.send_seed,
            candidate_url=o.candidate_base_url,
            served_reference=o.served_reference if setup.reference.kind != "base" else None,
            reference_url=o.reference_base_url,
        )
        if not setup.check:
            return served
        cand = setup.candidate
        found = preflight(
            base_url=o.base_url,
            served_base=o.served_base,
            served_candidate=o.served_candidate,
            candidate_url=o.candidate_base_url,
            tokenizer=load_tokenizer(tokenizer_dir(cand.base, cand.adapter)),
            api_key_env=o.api_key_env,
            needs_loglik=setup.needs_loglik,
            where=setup.where,
            served_reference=served.served_reference,
            reference_url=o.reference_base_url,
        )
        modes = {v: m for v, m in found["loglik"].items() if m}
        return replace(served, loglik=modes, models=found["models"])

    def __init__(self, runtimes: Any, state: Served):
        super().__init__(runtimes, state)
        self._opened: dict[str, OpenAIRuntime] = {}

    def open(self, variant: str, dtype: str | None = None) -> OpenAIRuntime:
        if variant not in self._opened:
            s = self.state
            self._opened[variant] = OpenAIRuntime(
                base_url=s.url(variant),
                served=s.name(variant),
                tokenizer=self.runtimes.tokenizer(variant),
                identity=self.identity(variant),
                api_key_env=s.api_key_env,
                max_concurrency=s.max_concurrency,
                timeout=s.timeout,
                loglik_mode=s.loglik.get(variant, "prompt_logprobs"),
                send_seed=s.send_seed,
            )
        return self._opened[variant]

    def identity(self, variant: str) -> Identity:
        """A served variant is the server's model id and root, plus the local adapter's sha256 (the bytes the
        harness can verify); the server's weights themselves cannot be hashed from here."""
        s, name, rts = self.state, self.state.name(variant), self.runtimes
        root = (s.models.get(variant) or {}).get("root")
        return Identity(
            "openai",
            f"{s.url(variant)} {name} (root {root})",
            adapter=rts.adapter_sha(variant),
            tokenizer=rts.fingerprint_key(variant),
        )

    def engine_key(self, variant: str) -> Any:
        return {"engine": "openai", "server": self.state.url(variant), "served": self.state.name(variant)}

    def describe(self, variant: str) -> dict[str, Any]:
        s = self.state
        found = s.models.get(variant) or {}
        return {"engine": "openai", "server": s.url(variant), "served_as": s.name(variant), **found}

    def close(self) -> None:
        for rt in self._opened.values():
            rt.close()
        self._opened.clear()
