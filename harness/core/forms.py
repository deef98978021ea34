"""The two sides of a release: the candidate and the reference it must beat, each in any form a team ships.

A form is one of:
- `base`: the configured base model itself (the default reference);
- `adapter`: a PEFT adapter directory (LoRA, QLoRA, DoRA) on the configured base;
- `full`: a full model directory (a full fine-tune or a merged checkpoint: safetensors, config and tokenizer), a
  `.gguf` file (converted once to such a directory) or a hub id;
and any of them may come from a registry written by `harness promote` (`registry:DIR` for its current version,
`registry:DIR@N` for version N).

Every form is a `BaseModel` (the weights that are loaded) and, for an adapter, an `AdapterInfo` on top: the same
pair `harness.core.models.fingerprint` hashes, so a model's measurements are keyed by its content, never its role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.hashing import sha256_dir
from harness.core.models import (
    AdapterInfo,
    BaseModel,
    Fingerprint,
    check_adapter,
    fingerprint,
    resolve_base,
    tokenizer_dir,
    weight_files,
)
from harness.core.registry import Version
from harness.core.registry import resolve as resolve_registry

# the files that make two tokenizers the same: the vocabulary and merges, not the chat template
VOCAB_FILES = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model"]


@dataclass(frozen=True)
class Form:
    """One side of the comparison: what the config named, resolved and hashed."""

    kind: str  # base | adapter | full
    spec: str  # what the config said
    key: str  # the config key that named it (model.reference, model.candidate, model.adapter)
    base: BaseModel  # the weights loaded: the base under an adapter, or the full checkpoint itself
    adapter: AdapterInfo | None = None
    sha256: str = ""  # content hash of what ships: the adapter directory, or every file of a full checkpoint
    registry: Version | None = None  # the registry version it came from

    @property
    def path(self) -> Path:
        return self.adapter.dir if self.adapter is not None else self.base.dir

    @property
    def fingerprint(self) -> Fingerprint:
        return fingerprint(self.base, self.adapter)

    def describe(self) -> str:
        """In words, with its hash: "registry /r v3, adapter sha256 ab12cd34ef56"."""
        what = {"base": "the base", "adapter": "adapter", "full": "full checkpoint"}[self.kind]
        if self.kind == "full" and self.base.source == "gguf":
            what = "GGUF checkpoint"
        where = f"registry {self.registry.registry} v{self.registry.number}, " if self.registry is not None else ""
        name = self.base.id if self.kind == "base" else str(self.path)
        return f"{where}{what} {name} (sha256 {self.sha256[:12]})"

    def to_dict(self) -> dict[str, Any]:
        """What the report records of this side (`report.json` `candidate` / `reference`)."""
        out: dict[str, Any] = {
            "form": self.kind,
            "path": str(self.path),
            "sha256": self.sha256,
            "base": self.base.id if self.kind != "full" else None,
            "describe": self.describe(),
            "registry": (
                {"dir": str(self.registry.registry), "version": self.registry.number}
                if self.registry is not None
                else None
            ),
        }
        if self.adapter is not None:
            out.update(adapter=str(self.adapter.dir), adapter_sha256=self.adapter.sha256)
        return out


def base_form(base: BaseModel, key: str = "model.reference") -> Form:
    return Form("base", "base", key, base, sha256=fingerprint(base).weights_sha256)


def _full(base: BaseModel, spec: str, key: str, registry: Version | None = None) -> Form:
    where = f"{key} = {spec!r}"
    if not any((base.dir / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise HarnessError(
            "the full checkpoint has no tokenizer (no tokenizer.json or tokenizer_config.json beside its weights)",
            where=where,
            fix="save the tokenizer into that folder too: tokenizer.save_pretrained(DIR)",
        )
    weight_files(base.dir)  # refuses pickle-only checkpoints
    sha = sha256_dir(base.dir)  # every weight, config and tokenizer file
    return Form("full", spec, key, base, sha256=sha, registry=registry)


def resolve_form(spec: str, base: BaseModel, *, key: str, base_dir: Path | None = None) -> Form:
    """Resolve what `key` names (`"base"`, an adapter, a full checkpoint, a .gguf, a hub id or `registry:DIR[@N]`)."""
    if spec == "base":
        return base_form(base, key)
    registry = None
    if spec.startswith("registry:"):
        registry = resolve_registry(spec, base_dir, key=key)
        path = registry.model
    else:
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
            path = base_dir / path
    if (path.is_dir() and (path / "adapter_config.json").is_file()) or key == "model.adapter":
        adapter = check_adapter(path, base, key=key)
        return Form("adapter", spec, key, base, adapter, sha256=adapter.sha256, registry=registry)
    if path.suffix == ".gguf" and not path.is_file():
        raise HarnessError("GGUF file not found", where=f"{key} = {spec!r}", fix="check the path")
    if path.is_dir() or path.suffix == ".gguf" or registry is not None:
        if path.is_dir() and not (path / "config.json").is_file():
            raise HarnessError(
                "neither a PEFT adapter directory (no adapter_config.json) nor a full model directory (no config.json)",
                where=f"{key} = {spec!r}",
                fix="point at the folder that PeftModel.save_pretrained or model.save_pretrained wrote, or a .gguf",
            )
        full = resolve_base(str(path), base_dir, key=key)
        return _full(full, spec, key, registry)
    if path.exists():
        raise HarnessError(
            "not a model: a file that is not a .gguf",
            where=f"{key} = {spec!r}",
            fix="point at an adapter directory, a full model directory, a .gguf file, a hub id or registry:DIR",
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        hub = resolve_base(spec, base_dir, key=key)
        if (hub.dir / "adapter_config.json").is_file():
            adapter = check_adapter(hub.dir, base, key=key)
            return Form("adapter", spec, key, base, adapter, sha256=adapter.sha256)
        return _full(hub, spec, key)
    raise HarnessError(
        "not found: no such adapter directory, model directory or .gguf file",
        where=f"{key} = {spec!r}",
        fix='use "base", an adapter directory, a full model directory, a .gguf file, a hub id (org/name) or '
        "registry:DIR[@N]",
    )


def vocab_sha256(form: Form) -> str:
    return sha256_dir(tokenizer_dir(form.base, form.adapter), names=VOCAB_FILES)


def check_pair(reference: Form, candidate: Form, *, token_gates: list[str]) -> None:
    """Refuse a comparison that compares nothing (the same model twice), or one whose token-level measurements
    would compare different tokenisations (`token_gates`: the gates that need shared tokens)."""
    if reference.fingerprint.key == candidate.fingerprint.key:
        raise HarnessError(
            f"the reference and the candidate are the same model (sha256 {candidate.sha256[:12]}): nothing to compare",
            where=f"{reference.key} = {reference.spec!r} and {candidate.key} = {candidate.spec!r}",
            fix="gate a new candidate, or compare with another reference (the base, or registry:DIR@N)",
        )
    if token_gates and vocab_sha256(reference) != vocab_sha256(candidate):
        raise HarnessError(
            "the reference's tokenizer differs from the candidate's, and these gates compare per-token numbers: "
            + ", ".join(token_gates),
            where=f"{reference.key} = {reference.spec!r}",
            fix="compare models that share a tokenizer, or drop those gates (gates that only generate text, such as "
            "judge, pass_at_k, safety and regression on prompts, do not need shared tokens)",
        )
