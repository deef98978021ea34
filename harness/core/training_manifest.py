"""`training_manifest.json`: what `harness train` records beside every adapter it writes, read and written here
only. Fields an older manifest lacks read as None (or empty); keys this version does not know are kept in
`extra` and written back, so reading and writing a manifest loses nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

TRAINING_MANIFEST = "training_manifest.json"


@dataclass(frozen=True)
class TrainingManifest:
    method: str | None = None  # lora | qlora
    stage: str | None = None  # cpt | sft
    base: dict[str, Any] = field(default_factory=dict)  # id, revision, source, dir, weights/tokenizer/template hashes
    init_adapter: str | None = None  # the adapter this stage continued (the CPT stage's, for SFT)
    data: dict[str, Any] = field(default_factory=dict)  # train {path, sha256, records}, valid, train_sample
    template_diversity: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the FineTuneSpec, as trained
    target_modules: list[str] = field(default_factory=list)
    seed: int | None = None
    compute_dtype: str | None = None
    quantization: dict[str, Any] | None = None
    device: str | None = None
    bf16: bool | None = None
    steps: int | None = None
    trainable_params: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    valid_loss_start: float | None = None
    train_sample_loss: float | None = None
    loss_log: list[Any] = field(default_factory=list)
    wall_time_s: float | None = None
    tokens_seen: int | None = None
    tokens_per_s: float | None = None
    resumed_from_step: int | None = None
    loss_curve: str | None = None
    tracking: dict[str, Any] | None = None  # the tracker run TRL logged to (harness.core.tracking.training_run)
    packages: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by another version

    # -- what readers ask ------------------------------------------------------------------------
    @property
    def qlora(self) -> bool:
        return self.method == "qlora"

    @property
    def train_path(self) -> str | None:
        return (self.data.get("train") or {}).get("path")

    @property
    def chat_template_sha256(self) -> str | None:
        return self.extra.get("chat_template_sha256") or self.base.get("chat_template_sha256")

    @property
    def max_length(self) -> int | None:
        v = self.config.get("max_length")
        return int(v) if isinstance(v, int | float) else None

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingManifest:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})

    def write(self, *paths: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, default=str)
        for p in paths:
            Path(p).write_text(text, encoding="utf-8")


def manifest_path(where: str | Path) -> Path:
    where = Path(where)
    return where / TRAINING_MANIFEST if where.is_dir() else where


def read_manifest(where: str | Path) -> TrainingManifest:
    """The manifest in an adapter (or stage) directory, or at a file path; a clear error when absent or broken."""
    path = manifest_path(where)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise HarnessError(
            "no training manifest", where=str(path), fix="train with `harness train` (it writes one beside the adapter)"
        ) from None
    except ValueError as e:
        raise HarnessError(f"training manifest is not valid JSON ({e})", where=str(path)) from None
    if not isinstance(d, dict):
        raise HarnessError("training manifest is not a JSON object", where=str(path))
    return TrainingManifest.from_dict(d)


def find_manifest(where: str | Path) -> TrainingManifest | None:
    """The manifest if there is a readable one (adapters trained elsewhere have none)."""
    try:
        return read_manifest(where)
    except HarnessError:
        return None
