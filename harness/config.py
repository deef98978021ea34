"""The release config: one TOML file, validated, with every problem naming its key (and line) and the fix.

    [model]
    base = "smollm2-135m-instruct"      # alias, local HF dir, .gguf file, or hub id
    adapter = "runs/demo/adapter"       # the candidate: a PEFT adapter directory (or `candidate = ...`)
    reference = "base"                  # what it must beat: "base", any model form, or "registry:DIR[@N]"

    [run]
    seed = 1234

    [gates.perplexity]                  # presence enables the gate; required = true by default
    data = "data/eval.jsonl"
    min_relative_improvement = 0.05

Unknown keys are errors. Relative paths are resolved from the config file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fine_tune.spec import FineTuneSpec
from harness.core.errors import NOT_AN_ENV_NAME, ConfigError, HarnessError, is_env_name
from harness.core.files import read_utf8, tomllib
from harness.core.runtime.registry import backend_names, get_backend, option_keys

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    base: str = field(metadata={"help": "alias smollm2-135m-instruct, a local HF directory, a .gguf file or a hub id"})
    adapter: str | None = field(
        default=None, metadata={"path": True, "help": "PEFT adapter directory: the candidate (short for candidate)"}
    )
    candidate: str | None = field(
        default=None,
        metadata={
            "help": "the candidate: a PEFT adapter directory on base, a full model directory (a full fine-tune or a "
            "merged checkpoint), a .gguf file, a hub id, or registry:DIR[@N]"
        },
    )
    reference: str = field(
        default="base",
        metadata={
            "help": 'what the candidate is compared with: "base" (default), any form candidate takes, or '
            "registry:DIR[@N] (the release promoted there: the current one, or version N)"
        },
    )
    revision: str | None = field(default=None, metadata={"help": "hub revision of the base (hub ids only)"})
    dtype: str = field(default="auto", metadata={"help": "auto (float32 on CPU, bfloat16 on a GPU that has it)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, mps"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub (off by default)"})
    backend: str = field(
        default="hf",
        metadata={
            "help": "where reference and candidate answer: hf (in-process transformers), vllm (vLLM's engine "
            "in-process), openai (an OpenAI-compatible server, e.g. vLLM), or a backend a plugin registers; "
            "a backend's own keys sit in this table too (below)"
        },
    )
    # the backend's own [model] keys, built into its Options dataclass by the config loader (not a key itself)
    options: Any = field(default=None, metadata={"internal": True})

    def __post_init__(self) -> None:
        problems = []
        if self.dtype not in DTYPES:
            problems.append(("dtype", f"must be one of {', '.join(DTYPES)}"))
        if self.adapter and self.candidate:
            problems.append(("candidate", "give the candidate once: `adapter` is the short spelling of `candidate`"))
        if not self.reference.strip():
            problems.append(("reference", 'must name a model; "base" compares with the base'))
        if problems:
            raise ValueError(problems)

    @property
    def candidate_spec(self) -> str | None:
        """The candidate as the config names it (`candidate`, or its short spelling `adapter`)."""
        return self.candidate or self.adapter

    @property
    def candidate_key(self) -> str:
        return "model.candidate" if self.candidate else "model.adapter"


@dataclass(frozen=True)
class RunSpec:
    seed: int = field(default=1234, metadata={"help": "seed for bootstrap resampling and sampling; recorded"})
    cache_dir: str | None = field(
        default=None, metadata={"path": True, "help": "measurement cache (default: user cache)"}
    )
    workers: int = field(
        default=1,
        metadata={
            "help": "processes measuring at once, one torch thread share each, on a CPU with the in-process hf "
            "backend (each loads the model; 2 on two cores answer about 1.4x faster than one process)"
        },
    )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError([("workers", "must be at least 1 (1: this process alone)")])


@dataclass(frozen=True)
class DataSpec:
    allowed_licenses: list[str] = field(
        default_factory=list,
        metadata={"help": "licence ids training rows may carry (empty: any); others are refused, naming the rows"},
    )
    disallowed_licenses: list[str] = field(
        default_factory=list, metadata={"help": 'licence ids refused in training data, e.g. ["CC-BY-NC-4.0"]'}
    )

    def __post_init__(self) -> None:
        both = {a.lower() for a in self.allowed_licenses} & {d.lower() for d in self.disallowed_licenses}
        if both:
            raise ValueError([("disallowed_licenses", f"names licences also allowed: {sorted(both)}")])


@dataclass(frozen=True)
class GateConfig:
    name: str
    required: bool
    params: Any


@dataclass(frozen=True)
class ReleaseConfig:
    model: ModelSpec | None
    run: RunSpec
    gates: tuple[GateConfig, ...]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    fine_tune: FineTuneSpec | None = None
    data: DataSpec = field(default_factory=DataSpec)

    def gate(self, name: str) -> GateConfig | None:
        return next((g for g in self.gates if g.name == name), None)

    def eval_data(self) -> list[str]:
        """Every data file a gate evaluates on (the runner refuses to train on them)."""
        out = []
        for g in self.gates:
            for f in dataclasses.fields(g.params):
                value = getattr(g.params, f.name)
                if f.metadata.get("path") and value:
                    out += value if isinstance(value, list) else [value]
        return out

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


class _Problems:
    def __init__(self, text: str | None):
        self.items: list[str] = []
        self.lines = text.splitlines() if text else []

    def line_of(self, section: str, key: str | None) -> int | None:
        """Best-effort line number of `key` inside `[section]` (or of the section header)."""
        header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
        start = next((i for i, ln in enumerate(self.lines) if header.match(ln)), None)
        if start is None:
            return None
        if key is None:
            return start + 1
        pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if pat.match(self.lines[i]):
                return i + 1
        return start + 1

    def add(self, section: str, key: str | None, msg: str) -> None:
        line = self.line_of(section, key)
        loc = f"[{section}]" + (f" {key}" if key else "")
        self.items.append(f"{loc}{f' (line {line})' if line else ''}: {msg}")


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    return True


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


# keys that name an environment variable holding a secret: a value that is no variable name may be the secret
SECRET_NAMES = frozenset({"api_key_env"})


def _resolve_path(value: str, base_dir: Path) -> str:
    if value.startswith("builtin:"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base_dir / p).resolve())


def _build(cls: type, table: Any, section: str, probs: _Problems, base_dir: Path, extra: tuple[str, ...] = ()) -> Any:
    if not isinstance(table, dict):
        probs.add(section, None, f"must be a table, e.g. [{section}]")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    allowed = list(fields) + list(extra)
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        if key in extra:
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            probs.add(section, key, f"unknown key; {hint}allowed keys: {', '.join(allowed)}")
            ok = False
            continue
        if key in SECRET_NAMES and value is not None and not is_env_name(value):
            probs.add(section, key, NOT_AN_ENV_NAME)  # never echoed: it may be the key itself
            ok = False
            continue
        if not _type_ok(value, hints[key]):
            probs.add(section, key, f"must be {_type_name(hints[key])}, got {value!r}")
            ok = False
            continue
        if fields[key].metadata.get("path") and isinstance(value, str) and value:  # "": none
            value = _resolve_path(value, base_dir)
        elif fields[key].metadata.get("path") and isinstance(value, list):
            value = [_resolve_path(v, base_dir) for v in value]
        if hints[key] is float and isinstance(value, int):
            value = float(value)
        kwargs[key] = value
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in table:
            probs.add(
                section, None, f"missing required key {name!r} ({f.metadata.get('help', '')}); add `{name} = ...`"
            )
            ok = False
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if any(n not in kwargs for n in required):
        return None
    try:  # also when other keys were bad: every problem is reported in one go
        built = cls(**kwargs)
    except ValueError as e:
        for key, msg in e.args[0] if e.args and isinstance(e.args[0], list) else [(None, str(e))]:
            probs.add(section, key, f"{msg} (got {table.get(key)!r})" if key else msg)
        return None
    return built if ok else None


SECTIONS = ("model", "run", "gates", "fine_tune", "data")


def _model(table: Any, probs: _Problems, base_dir: Path) -> ModelSpec | None:
    """[model]: its own keys, and the keys of the backend it names (built into that backend's Options)."""
    if not isinstance(table, dict):
        return _build(ModelSpec, table, "model", probs, base_dir)
    name = table.get("backend", "hf")
    known = backend_names()
    if not isinstance(name, str) or name not in known:
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        probs.add("model", "backend", f"unknown backend {name!r}; {hint}known: {', '.join(known)}")
        return None
    be = get_backend(name)
    own = {f.name for f in dataclasses.fields(be.Options)} if be.Options else set()
    others = option_keys()
    for key in table:
        if key in others and key not in own:
            probs.add(
                "model",
                key,
                f'a key of backend "{others[key]}"; this config\'s backend is "{name}": remove it, or set '
                f'backend = "{others[key]}"',
            )
    general = {k: v for k, v in table.items() if k not in others}
    spec = _build(ModelSpec, general, "model", probs, base_dir)
    options = None
    if be.Options is not None:
        missing = [
            f
            for f in dataclasses.fields(be.Options)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in table
        ]
        for f in missing:
            help_ = f.metadata.get("help", "")
            probs.add("model", f.name, f'is required with backend = "{name}" ({help_}); add `{f.name} = ...`')
        if missing:
            return None
        options = _build(be.Options, {k: v for k, v in table.items() if k in own}, "model", probs, base_dir)
        if options is None:
            return None
    if spec is None or any(k in others and k not in own for k in table):
        return None
    bad = be.validate(options, reference=spec.reference)
    for key, msg in bad:
        probs.add("model", key, msg)
    return None if bad else dataclasses.replace(spec, options=options)


def parse_config(
    data: dict[str, Any], *, path: Path | None = None, text: str | None = None, purpose: str = "gate"
) -> ReleaseConfig:
    """Validate a parsed TOML document; raise `ConfigError` listing every problem.

    `purpose` is `gate` (needs [model] and at least one gate), `train` (needs [fine_tune]) or `data` (reads
    [data]; needs neither).
    """
    from gates import gate_names, get_gate

    probs = _Problems(text)
    base_dir = path.parent if path else Path.cwd()
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1)
            hint = f"did you mean [{close[0]}]? " if close else ""
            probs.items.append(
                f"[{key}]: unknown section; {hint}allowed sections: [model], [run], [fine_tune], [data], [gates.NAME]"
            )
    model = None
    if "model" in data:
        model = _model(data["model"], probs, base_dir)
    elif purpose != "data" and (purpose == "gate" or "base" not in data.get("fine_tune", {})):
        probs.items.append('[model]: missing; add [model] with base = "smollm2-135m-instruct" and adapter = "DIR"')
    fine_tune = None
    if "fine_tune" in data:
        fine_tune = _build(FineTuneSpec, data["fine_tune"], "fine_tune", probs, base_dir)
    elif purpose == "train":
        probs.items.append('[fine_tune]: missing; add [fine_tune] with train = "train.jsonl" (see README)')
    run = _build(RunSpec, data.get("run", {}), "run", probs, base_dir)
    data_spec = _build(DataSpec, data.get("data", {}), "data", probs, base_dir)
    gates: list[GateConfig] = []
    table = data.get("gates", {})
    if not isinstance(table, dict) or (not table and purpose == "gate"):
        probs.items.append(
            f"[gates]: no gate configured; add a table such as [gates.perplexity] (known: {', '.join(gate_names())})"
        )
    else:
        for name, gtable in table.items():
            section = f"gates.{name}"
            if name not in gate_names():
                close = difflib.get_close_matches(name, gate_names(), n=1)
                hint = f"did you mean [gates.{close[0]}]? " if close else ""
                probs.add(section, None, f"unknown gate; {hint}known gates: {', '.join(gate_names())}")
                continue
            required = gtable.get("required", True) if isinstance(gtable, dict) else True
            if not isinstance(required, bool):
                probs.add(section, "required", f"must be true or false, got {required!r}")
            params = _build(get_gate(name).params, gtable, section, probs, base_dir, extra=("required",))
            if params is not None:
                gates.append(GateConfig(name=name, required=bool(required), params=params))
    where = str(path) if path else "<config>"
    if probs.items:
        raise ConfigError(probs.items, where=where)
    return ReleaseConfig(
        model=model, run=run, gates=tuple(gates), path=path, raw=data, fine_tune=fine_tune, data=data_spec or DataSpec()
    )


def load_config(path: str | Path, purpose: str = "gate") -> ReleaseConfig:
    """Read and validate a release config file."""
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise HarnessError("release config not found", where=str(p), fix="pass --config PATH to a TOML release config")
    text = read_utf8(p, what="release config", fix_bom="save it without the BOM (UTF-8 without signature)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"not valid TOML: {e}", where=str(p), fix="fix the TOML syntax at that line") from None
    return parse_config(data, path=p, text=text, purpose=purpose)
