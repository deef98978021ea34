"""Opening runtimes: the one place where a measured model is loaded.

A release has up to four variants: `base`, `candidate` (base + adapter, unmerged), `merged` (merge_and_unload,
from the release cache) and `gguf:<TYPE>` (an exported GGUF read back by transformers). `Runtimes` hands each
measurement the variant it asks for, loading it on first use and keeping it for the rest of the run; base and
candidate share one loaded model (the adapter is switched off for the base). Processes that measure on their
own (serving latency, bundle verification) open a model directory with `open_dir`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.core.console import quiet_hf_progress
from harness.core.forms import Form, base_form
from harness.core.hashing import sha256_json
from harness.core.models import (
    AdapterInfo,
    BaseModel,
    Fingerprint,
    attach_adapter,
    fingerprint,
    load_base_model,
    load_tokenizer,
    pick_device_dtype,
    resolve_base,
    tokenizer_dir,
)
from harness.core.runtime.base import Identity
from harness.core.runtime.hf import HFRuntime
from harness.core.runtime.openai import OpenAIRuntime
from harness.core.runtime.vllm import VLLMEngine, VLLMRuntime

# variant -> the artifact it is loaded from ("merged" -> a model directory, "gguf:Q8_0" -> a .gguf file)
Locate = Callable[[str], Path]


@dataclass(frozen=True)
class Served:
    """Reference and candidate behind OpenAI-compatible servers (`[model] backend = "openai"`). The reference is
    the base (`served_base`) unless `served_reference` names it (e.g. last release's LoRA on the same server, or
    on `reference_url`'s)."""

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


def _dtype_name(dt: Any) -> str:
    return str(dt).replace("torch.", "")


def open_dir(path: Path, *, device: str = "auto", dtype: str = "float32", adapter: Path | None = None) -> HFRuntime:
    """A saved transformers model directory (safetensors only) as a runtime: a merge, or a bundle's merge; with
    `adapter`, a PEFT adapter applied unmerged on top of it (as a LoRA server runs it)."""
    from transformers import AutoModelForCausalLM

    quiet_hf_progress()
    dev, dt = pick_device_dtype(device, dtype)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dt, use_safetensors=True).to(dev).eval()
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=False).eval()
    src = str(Path(path).resolve())
    key = src if adapter is None else [src, str(Path(adapter).resolve())]
    ident = Identity("hf", sha256_json(key), dtype=_dtype_name(dt))
    return HFRuntime(model, load_tokenizer(path), identity=ident)


def open_gguf(path: Path) -> HFRuntime:
    """A GGUF file read back by transformers (dequantised to float32), with the tokenizer the GGUF carries."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_hf_progress()
    path = Path(path)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype="float32").eval()
    return HFRuntime(model, tok, identity=Identity("hf", f"gguf:{path.name}", dtype="float32"))


def open_model(spec: str, base_dir: Path | None = None, *, device: str = "auto", dtype: str = "auto") -> HFRuntime:
    """A model named as `[model] base` is (alias, directory, .gguf, hub id) as a runtime: e.g. a local judge."""
    base = resolve_base(spec, base_dir)
    dev, dt = pick_device_dtype(device, dtype)
    model = load_base_model(base, device=str(dev), dtype=_dtype_name(dt))
    tok = load_tokenizer(tokenizer_dir(base), need_chat_template=True)
    return HFRuntime(model, tok, identity=Identity("hf", fingerprint(base).key, dtype=_dtype_name(dt)))


class Runtimes:
    """The variants of one release, opened on first use and kept for the run.

    `base` (the reference side: the base by default, or any `harness.core.forms.Form` given as `reference`) and
    `candidate` (base + `adapter`, or any form given as `candidate`). Models are loaded once per weights and
    dtype: a reference and a candidate on the same base share one loaded model, each adapter attached under its
    own name (the bare base answers with the adapters switched off). `device` and `dtype` are the run's
    (`[model]`); a measurement may ask for another dtype (the release checks compare in float32), which loads
    the weights once more in that dtype. `locate` finds the artifact a `merged` or `gguf:<TYPE>` variant is read
    from (made on first use by the release engineering that owns it)."""

    def __init__(
        self,
        base: BaseModel,
        adapter: AdapterInfo | None,
        *,
        reference: Form | None = None,
        candidate: Form | None = None,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        locate: Locate | None = None,
        status: Callable[[str], Any] | None = None,
        fingerprints: dict[str, Fingerprint] | None = None,
        served: Served | None = None,
        backend: str = "hf",
    ):
        if candidate is None:
            candidate = (
                Form("adapter", str(adapter.dir), "model.adapter", base, adapter, sha256=adapter.sha256)
                if adapter is not None
                else base_form(base)
            )
        self.forms: dict[str, Form] = {"base": reference or base_form(base), "candidate": candidate}
        self.base, self.locate = base, locate
        self.device_spec, self.dtype_spec, self.trust_remote_code = device, dtype, trust_remote_code
        self._status = status
        self.served = served  # reference and candidate answer from this server instead of an in-process model
        self.backend = "openai" if served is not None else backend  # hf | vllm (in-process) | openai
        self._vllm: Any = None  # the one vllm.LLM of reference and candidate (backend vllm)
        self._fps = dict(fingerprints or {})  # variant -> Fingerprint (hashing weights is not free: once)
        self._models: dict[tuple[str, str], Any] = {}  # (weights dir, dtype) -> the loaded model (PeftModel once
        self._attached: dict[tuple[str, str], set[str]] = {}  # an adapter is on) and the adapters attached to it
        self._tokenizers: dict[str, Any] = {}
        self._artifacts: dict[str, HFRuntime] = {}
        self.device: str | None = None  # where the first model landed (for the manifest)

    def _announce(self, what: str) -> Any:
        if self._status is None:
            from contextlib import nullcontext

            return nullcontext()
        return self._status(what)

    def _tokenizer(self, variant: str) -> Any:
        if variant not in self._tokenizers:
            form = self.forms[variant]
            tdir = tokenizer_dir(form.base, form.adapter)
            self._tokenizers[variant] = load_tokenizer(tdir, trust_remote_code=self.trust_remote_code)
        return self._tokenizers[variant]

    def _adapter_sha(self, variant: str) -> str | None:
        form = self.forms.get(variant)
        return form.adapter.sha256 if form is not None and form.adapter is not None else None

    def _identity(self, variant: str, dtype: str) -> Identity:
        if variant not in self._fps:
            self._fps[variant] = self.forms[variant].fingerprint
        fp = self._fps[variant]
        return Identity("hf", fp.weights_sha256, adapter=self._adapter_sha(variant), tokenizer=fp.key, dtype=dtype)

    def get(self, variant: str, *, dtype: str | None = None, local: bool = False) -> Any:
        """The runtime of `variant` (`base` (the reference), `candidate`, `merged`, `gguf:<TYPE>`); `local` asks
        for the in-process model even when reference and candidate are served (the release checks compare
        logits)."""
        if variant in ("base", "candidate"):
            if self.served is not None and not local:
                return self._remote(variant)
            if self.backend == "vllm" and not local:
                return self._in_vllm(variant)
            return self._shared(variant, dtype or self.dtype_spec)
        if variant == "merged" or variant.startswith("gguf:"):
            if variant not in self._artifacts:
                if self.locate is None:
                    raise ValueError(f"no artifact locator: cannot open the {variant} variant")
                path = self.locate(variant)
                with self._announce(f"Loading the {variant} model"):
                    self._artifacts[variant] = open_dir(path) if variant == "merged" else open_gguf(path)
            return self._artifacts[variant]
        raise ValueError(f"unknown variant {variant!r} (base, candidate, merged or gguf:<TYPE>)")

    def _shared(self, variant: str, dtype: str) -> HFRuntime:
        form = self.forms[variant]
        dev, dt = pick_device_dtype(self.device_spec, dtype)
        key = (str(form.base.dir), _dtype_name(dt))
        if key not in self._models:
            with self._announce(f"Loading model {form.base.id}"):
                self._models[key] = load_base_model(
                    form.base, device=str(dev), dtype=key[1], trust_remote_code=self.trust_remote_code
                )
            self._attached[key] = set()
            self.device = self.device or str(next(self._models[key].parameters()).device)
        attached = self._attached[key]
        name = None
        if form.adapter is not None:
            name = variant  # the adapter's name on the shared model: "candidate", or "base" for a reference adapter
            if name not in attached:
                who = "the reference's" if variant == "base" else "the candidate's"
                with self._announce(f"Attaching {who} adapter {form.adapter.dir}"):
                    if attached:
                        self._models[key].load_adapter(form.adapter.dir, adapter_name=name, is_trainable=False)
                    else:
                        self._models[key] = attach_adapter(self._models[key], form.adapter, name=name)
                attached.add(name)
        off = name is None and bool(attached)  # adapters are on the shared model: switch them off
        return HFRuntime(
            self._models[key],
            self._tokenizer(variant),
            identity=self._identity(variant, key[1]),
            adapter_off=off,
            adapter_name=name,
        )

    def _remote(self, variant: str) -> Any:
        assert self.served is not None
        if variant not in self._artifacts:
            s = self.served
            self._artifacts[variant] = OpenAIRuntime(
                base_url=s.url(variant),
                served=s.name(variant),
                tokenizer=self._tokenizer(variant),
                identity=self.remote_identity(variant),
                api_key_env=s.api_key_env,
                max_concurrency=s.max_concurrency,
                timeout=s.timeout,
                loglik_mode=s.loglik.get(variant, "prompt_logprobs"),
                send_seed=s.send_seed,
            )
        return self._artifacts[variant]

    def _in_vllm(self, variant: str) -> Any:
        key = f"vllm:{variant}"
        if key not in self._artifacts:
            if self._vllm is None:
                with self._announce(f"Starting vLLM's engine for {self.base.id}"):
                    loras = {v: f.adapter.dir for v, f in self.forms.items() if f.adapter is not None}
                    self._vllm = VLLMEngine(self.base.dir, loras, dtype=self.dtype_spec)
                self.device = self.device or ("cpu" if self._vllm.cpu else "cuda")
            lora = self._vllm.lora(variant) if self.forms[variant].adapter is not None else None
            ident = replace(self._identity(variant, self.dtype_spec), engine="vllm")
            self._artifacts[key] = VLLMRuntime(self._vllm, self._tokenizer(variant), identity=ident, lora=lora)
        return self._artifacts[key]

    def remote_identity(self, variant: str) -> Identity:
        """A served variant is the server's model id and root, plus the local adapter's sha256 (the bytes the
        harness can verify); the server's weights themselves cannot be hashed from here."""
        assert self.served is not None
        s, name = self.served, self.served.name(variant)
        root = (s.models.get(variant) or {}).get("root")
        return Identity(
            "openai",
            f"{s.url(variant)} {name} (root {root})",
            adapter=self._adapter_sha(variant),
            tokenizer=self._fps[variant].key if variant in self._fps else None,
        )

    def engine_key(self, variant: str) -> Any:
        """What the cache key adds to a variant's fingerprint: nothing in-process (the weights are hashed), the
        server and served name when served (another engine answers with other numbers)."""
        if variant not in ("base", "candidate") or self.backend == "hf":
            return None
        if self.served is None:
            return {"engine": self.backend}
        return {"engine": "openai", "server": self.served.url(variant), "served": self.served.name(variant)}

    def describe(self) -> dict[str, Any]:
        """Which engine answered each variant, for the manifest and the report."""
        if self.served is None:
            return {v: {"engine": self.backend, "device": self.device} for v in ("base", "candidate")}
        return {
            v: {"engine": "openai", "server": self.served.url(v), "served_as": self.served.name(v), **(
                self.served.models.get(v) or {})}
            for v in ("base", "candidate")
        }  # fmt: skip

    @property
    def loaded(self) -> bool:
        return bool(self._models or self._artifacts)

    def close(self) -> None:
        for rt in self._artifacts.values():
            rt.close()
        self._models.clear()
        self._artifacts.clear()
        self._attached.clear()
        if self._vllm is not None:
            self._vllm.close()
            self._vllm = None
