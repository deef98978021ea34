"""Opening runtimes: the one place where a measured model is loaded.

A release has up to four variants: `base`, `candidate` (base + adapter, unmerged), `merged` (merge_and_unload,
from the release cache) and `gguf:<TYPE>` (an exported GGUF read back by transformers). `Runtimes` hands each
measurement the variant it asks for, loading it on first use and keeping it for the rest of the run; base and
candidate share one loaded model (the adapter is switched off for the base). Processes that measure on their
own (serving latency, bundle verification) open a model directory with `open_dir`.
"""

from __future__ import annotations

from collections.abc import Callable
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
from harness.core.runtime.registry import Backend, get_backend

# variant -> the artifact it is loaded from ("merged" -> a model directory, "gguf:Q8_0" -> a .gguf file)
Locate = Callable[[str], Path]


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
        backend: str = "hf",
        state: Any = None,
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
        self.backend = backend  # [model] backend: where reference and candidate answer
        self.engine: Backend = get_backend(backend)(self, state)  # with what its `prepare` found
        self._engine_opened = False
        self._fps = dict(fingerprints or {})  # variant -> Fingerprint (hashing weights is not free: once)
        self._models: dict[tuple[str, str], Any] = {}  # (weights dir, dtype) -> the loaded model (PeftModel once
        self._attached: dict[tuple[str, str], set[str]] = {}  # an adapter is on) and the adapters attached to it
        self._tokenizers: dict[str, Any] = {}
        self._artifacts: dict[str, HFRuntime] = {}
        self.device: str | None = None  # where the first model landed (for the manifest)

    def announce(self, what: str) -> Any:
        if self._status is None:
            from contextlib import nullcontext

            return nullcontext()
        return self._status(what)

    def tokenizer(self, variant: str) -> Any:
        if variant not in self._tokenizers:
            form = self.forms[variant]
            tdir = tokenizer_dir(form.base, form.adapter)
            self._tokenizers[variant] = load_tokenizer(tdir, trust_remote_code=self.trust_remote_code)
        return self._tokenizers[variant]

    def adapter_sha(self, variant: str) -> str | None:
        form = self.forms.get(variant)
        return form.adapter.sha256 if form is not None and form.adapter is not None else None

    def fingerprint(self, variant: str) -> Fingerprint:
        if variant not in self._fps:
            self._fps[variant] = self.forms[variant].fingerprint
        return self._fps[variant]

    def fingerprint_key(self, variant: str) -> str | None:
        """The variant's fingerprint key when it is known already (a served variant's is never computed here)."""
        return self._fps[variant].key if variant in self._fps else None

    def identity(self, variant: str, dtype: str) -> Identity:
        """An in-process variant's identity: its weights, adapter, tokenizer and dtype."""
        fp = self.fingerprint(variant)
        return Identity("hf", fp.weights_sha256, adapter=self.adapter_sha(variant), tokenizer=fp.key, dtype=dtype)

    def get(self, variant: str, *, dtype: str | None = None, local: bool = False) -> Any:
        """The runtime of `variant` (`base` (the reference), `candidate`, `merged`, `gguf:<TYPE>`); `local` asks
        for the in-process model even when reference and candidate are served (the release checks compare
        logits)."""
        if variant in ("base", "candidate"):
            if local:
                return self.shared(variant, dtype)
            self._engine_opened = True
            return self.engine.open(variant, dtype)
        if variant == "merged" or variant.startswith("gguf:"):
            if variant not in self._artifacts:
                if self.locate is None:
                    raise ValueError(f"no artifact locator: cannot open the {variant} variant")
                path = self.locate(variant)
                with self.announce(f"Loading the {variant} model"):
                    self._artifacts[variant] = open_dir(path) if variant == "merged" else open_gguf(path)
            return self._artifacts[variant]
        raise ValueError(f"unknown variant {variant!r} (base, candidate, merged or gguf:<TYPE>)")

    def shared(self, variant: str, dtype: str | None = None) -> HFRuntime:
        """`variant` in this process (transformers + peft), on the model it shares with the other variant."""
        form, dtype = self.forms[variant], dtype or self.dtype_spec
        dev, dt = pick_device_dtype(self.device_spec, dtype)
        key = (str(form.base.dir), _dtype_name(dt))
        if key not in self._models:
            with self.announce(f"Loading model {form.base.id}"):
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
                with self.announce(f"Attaching {who} adapter {form.adapter.dir}"):
                    if attached:
                        self._models[key].load_adapter(form.adapter.dir, adapter_name=name, is_trainable=False)
                    else:
                        self._models[key] = attach_adapter(self._models[key], form.adapter, name=name)
                attached.add(name)
        off = name is None and bool(attached)  # adapters are on the shared model: switch them off
        return HFRuntime(
            self._models[key],
            self.tokenizer(variant),
            identity=self.identity(variant, key[1]),
            adapter_off=off,
            adapter_name=name,
        )

    def engine_key(self, variant: str) -> Any:
        """What the cache key adds to a variant's fingerprint: nothing in-process (the weights are hashed), the
        engine, or the server and served name when served (another engine answers with other numbers)."""
        return self.engine.engine_key(variant) if variant in ("base", "candidate") else None

    def describe(self) -> dict[str, Any]:
        """Which engine answered each variant, for the manifest and the report."""
        return {v: self.engine.describe(v) for v in ("base", "candidate")}

    @property
    def loaded(self) -> bool:
        return bool(self._models or self._artifacts or self._engine_opened)

    def close(self) -> None:
        for rt in self._artifacts.values():
            rt.close()
        self._models.clear()
        self._artifacts.clear()
        self._attached.clear()
        self.engine.close()
        self._engine_opened = False
