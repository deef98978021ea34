"""The run manifest: ties a verdict to its exact inputs."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.core.data import Dataset
from harness.core.errors import HarnessError
from harness.core.models import AdapterInfo, BaseModel, Fingerprint
from harness.core.training_manifest import TRAINING_MANIFEST, read_manifest

PACKAGES = (
    "release-gate-harness",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "numpy",
    "safetensors",
    "gguf",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(where: Path) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _side(form: Any) -> dict[str, Any]:
    """A side of the comparison as the manifest records it: its form, hashes and where it came from."""
    fp = form.fingerprint
    return {
        **form.to_dict(),
        "weights_sha256": fp.weights_sha256,
        "tokenizer_sha256": fp.tokenizer_sha256,
        "chat_template_sha256": fp.chat_template_sha256,
    }


def build_manifest(
    *,
    config_path: Path | None,
    config: dict[str, Any],
    base: BaseModel,
    base_fp: Fingerprint,
    reference: Any,
    candidate: Any,
    datasets: list[Dataset],
    seed: int,
    revision: str | None,
    device: str | None,
    cache: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """`reference` and `candidate` are `harness.core.forms.Form`s; `base` is the configured base they sit on."""
    training = None
    tm = candidate.path / TRAINING_MANIFEST
    if tm.is_file():
        try:
            training = read_manifest(tm).to_dict()
        except HarnessError:
            training = {"error": f"{tm} is not a valid training manifest"}
    adapter: AdapterInfo | None = candidate.adapter
    cand_fp = candidate.fingerprint
    return {
        "base": {
            "id": base.id,
            "revision": revision,
            "source": base.source,
            "dir": str(base.dir),
            "gguf_sha256": base.gguf_sha256,
            "weights_sha256": base_fp.weights_sha256,
            "tokenizer_sha256": base_fp.tokenizer_sha256,
            "chat_template_sha256": base_fp.chat_template_sha256,
        },
        "adapter": {  # the candidate's adapter (None fields for a full checkpoint)
            "dir": str(candidate.path),
            "sha256": candidate.sha256,
            "peft_type": adapter.peft_type if adapter else None,
            "r": adapter.r if adapter else None,
            "target_modules": adapter.target_modules if adapter else None,
            "recorded_base_model_name_or_path": adapter.recorded_base if adapter else None,
            "configured_base": base.id,
            "warnings": list(adapter.warnings) if adapter else [],
            "tokenizer_sha256": cand_fp.tokenizer_sha256,
            "chat_template_sha256": cand_fp.chat_template_sha256,
        },
        "reference": _side(reference),
        "candidate": _side(candidate),
        "training": training,
        "datasets": [{"name": d.name, "path": str(d.path), "sha256": d.sha256, "records": len(d)} for d in datasets],
        "seed": seed,
        "device": device,
        "packages": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
        "argv": sys.argv,
        "git": git_state(config_path.parent if config_path else Path.cwd()),
        "config_path": str(config_path) if config_path else None,
        "config": config,
        "cache": cache,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
