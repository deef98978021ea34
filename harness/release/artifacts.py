"""The artifacts a candidate ships as, made once per (base, adapter, tokenizer) in the user cache: the merged
model, its GGUF exports; and the fixed conversations the release checks run on. A full checkpoint (`adapter`
None) is its own merge: its GGUFs are exported from it directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.core.models import AdapterInfo, BaseModel, fingerprint
from harness.core.paths import cache_root
from harness.release.export import export_gguf, merge
from probes.suites import load_suite


def export_dir(base: BaseModel, adapter: AdapterInfo | None) -> Path:
    return cache_root() / "exports" / fingerprint(base, adapter).key[:24]  # weights, adapter and tokenizer


def ensure_merged(base: BaseModel, adapter: AdapterInfo | None, onto: str = "full-precision") -> Path:
    if adapter is None:  # a full checkpoint ships as it is
        return base.dir

    out = export_dir(base, adapter) / ("merged" if onto == "full-precision" else "merged-dequantized-nf4")
    if not (out / "config.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        merge(base, adapter, out, onto=onto)
    return out


def ensure_gguf(base: BaseModel, adapter: AdapterInfo | None, qtype: str) -> Path:
    merged = ensure_merged(base, adapter)
    out = export_dir(base, adapter) / f"model-{qtype}.gguf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)  # a full checkpoint made no merge there first
        export_gguf(merged, out, qtype)
    return out


def load_conversations(spec: str, base_dir: Path | None, limit: int) -> tuple[list[list[dict[str, str]]], str]:
    """The first `limit` conversations of a prompt suite and the suite's hash (the release checks' data)."""

    suite = load_suite(spec, base_dir, key="prompts", check_optional=True)
    return [list(i.messages) for i in suite.items[:limit]], suite.sha256


def locator(base: BaseModel, adapter: AdapterInfo | None) -> Callable[[str], Path]:
    """Where the `merged` and `gguf:<TYPE>` variants of this release are read from, made on first use."""

    def locate(variant: str) -> Path:
        if variant == "merged":
            return ensure_merged(base, adapter)
        if variant.startswith("gguf:"):
            return ensure_gguf(base, adapter, variant.split(":", 1)[1])
        raise ValueError(f"no artifact for variant {variant!r}")

    return locate
