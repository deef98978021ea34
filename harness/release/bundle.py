"""The release bundle: everything that ships, with the sha256 of every file and the greedy outputs recorded at
gating time, so a rollback can be checked exactly.

    bundle/
      adapter/            the PEFT adapter (with training_manifest.json)
      merged/             merged safetensors, tokenizer, chat template, generation_config.json
      model-F16.gguf ...  GGUF exports
      recorded_outputs.json   greedy outputs of the merged model on the probe prompts
      report.json         the gating report, when bundled after `harness gate`
      BUNDLE.json         sha256 and size of every file above

`python -m harness.release.bundle verify DIR` loads the bundle in a fresh process and reproduces the recorded outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.core.console import quiet_hf_progress, status
from harness.core.errors import HarnessError
from harness.core.fresh import run_module
from harness.core.hashing import sha256_file
from harness.core.runtime import GenParams
from harness.core.runtime.load import open_dir
from harness.release.artifacts import ensure_gguf, ensure_merged

MANIFEST = "BUNDLE.json"
RECORDED = "recorded_outputs.json"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def greedy_outputs(model_dir: Path, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    """The merged model's greedy answers as its own generation config ends them, special tokens kept (on the CPU
    in float32: a bundle must reproduce the same text wherever it is checked)."""

    rt = open_dir(model_dir, device="cpu", dtype="float32")
    params = GenParams(max_new_tokens=max_new_tokens, eos="config")
    return [rt.generate_one(conv, params).raw for conv in conversations]


def make_bundle(
    base: Any,
    adapter: Any,
    out: Path,
    conversations: list[list[dict[str, str]]],
    *,
    gguf_types: tuple[str, ...] = ("F16",),
    max_new_tokens: int = 32,
    report: Path | None = None,
) -> Path:
    """Write the bundle to `out` (a new directory; written beside it and renamed when complete)."""

    out = Path(out)
    if out.exists():
        raise HarnessError("bundle directory exists", where=str(out), fix="choose a new bundle directory")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    merged = ensure_merged(base, adapter)
    with status(f"Writing the release bundle {out}"):
        if adapter is not None:  # a full checkpoint has no adapter: its merge is itself
            shutil.copytree(adapter.dir, tmp / "adapter")
        shutil.copytree(merged, tmp / "merged")
        for qtype in gguf_types:
            shutil.copy2(ensure_gguf(base, adapter, qtype), tmp / f"model-{qtype}.gguf")
        if report is not None and Path(report).is_file():
            shutil.copy2(report, tmp / "report.json")
        outputs = greedy_outputs(tmp / "merged", conversations, max_new_tokens)
        (tmp / RECORDED).write_text(
            json.dumps({"max_new_tokens": max_new_tokens, "conversations": conversations, "outputs": outputs}, indent=2)
        )
        files = {str(p.relative_to(tmp)): {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in _files(tmp)}
        (tmp / MANIFEST).write_text(
            json.dumps(
                {
                    "base": base.id,
                    "adapter_sha256": adapter.sha256 if adapter is not None else None,
                    "merged_onto": "full-precision" if adapter is not None else "none: a full checkpoint",
                    "gguf_types": list(gguf_types),
                    "files": files,
                },
                indent=2,
            )
        )
    os.replace(tmp, out)
    return out


def verify_files(bundle: Path) -> dict[str, list[str]]:
    """Files missing from, altered in, or added to the bundle since it was written."""
    bundle = Path(bundle)
    try:
        listed = json.loads((bundle / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return {"missing": [MANIFEST], "altered": [], "unexpected": []}
    missing = [f for f in listed if not (bundle / f).is_file()]
    altered = [f for f, m in listed.items() if (bundle / f).is_file() and sha256_file(bundle / f) != m["sha256"]]
    unexpected = [str(p.relative_to(bundle)) for p in _files(bundle) if str(p.relative_to(bundle)) not in listed]
    return {"missing": missing, "altered": altered, "unexpected": unexpected}


def verify(bundle: Path) -> dict[str, Any]:
    """Check every file's hash, then reload the merged model from the bundle and reproduce the outputs."""
    problems = verify_files(bundle)
    result: dict[str, Any] = {"bundle": str(bundle), **problems, "reproduced": 0, "recorded": 0, "differing": []}
    if problems["missing"] or problems["altered"]:
        return result
    rec = json.loads((Path(bundle) / RECORDED).read_text())
    outs = greedy_outputs(Path(bundle) / "merged", rec["conversations"], rec["max_new_tokens"])
    result["recorded"] = len(rec["outputs"])
    for conv, want, got in zip(rec["conversations"], rec["outputs"], outs, strict=True):
        if want == got:
            result["reproduced"] += 1
        elif len(result["differing"]) < 3:
            result["differing"].append({"prompt": conv[-1]["content"][:200], "recorded": want, "now": got})
    return result


def verify_in_fresh_process(bundle: Path, timeout: float = 900) -> dict[str, Any]:
    """`verify` in a new Python process: nothing of this process (loaded weights, caches) can help it."""

    run = run_module("harness.release.bundle", "verify", str(bundle), timeout=timeout)
    if not run.ok:
        raise RuntimeError(f"bundle verification process failed (exit {run.returncode}): {run.stderr[-2000:]}")
    return run.result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.release.bundle")
    ap.add_argument("command", choices=["verify"])
    ap.add_argument("bundle")
    args = ap.parse_args(argv)

    quiet_hf_progress()
    print(json.dumps(verify(Path(args.bundle))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
