"""Serving cost of the merged model, measured in a fresh process (so peak memory is the model's, not the
harness's): latency per request (batch 1, greedy, fixed new-token count), generation tokens/s, peak RSS.

    python -m harness.release.serving MODEL_DIR PROMPTS.json --max-new-tokens 32 --warmup 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness.core.console import quiet_hf_progress
from harness.core.fresh import peak_rss_mb, run_module
from harness.core.kinds import MeasureCall, as_is, kind
from harness.core.runtime import GenParams
from harness.core.runtime.load import open_dir
from harness.release.artifacts import ensure_merged
from probes.sampling import load_prompts


def _probe(
    model_dir: Path, conversations: list[list[dict[str, str]]], max_new_tokens: int, warmup: int, adapter: str = ""
) -> dict:
    import torch

    t0 = time.perf_counter()
    # as it would be served: the device's best dtype; with an adapter, the unmerged candidate (applied at every
    # forward pass, as a LoRA server runs it)
    rt = open_dir(model_dir, device="auto", dtype="auto", adapter=Path(adapter) if adapter else None)
    load_s = time.perf_counter() - t0
    param = next(rt.model.parameters())
    dev, dt = param.device, param.dtype
    # a fixed number of new tokens: latency measures the model, not how soon it decides to stop
    params = GenParams(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, eos="config")
    latencies, tokens = [], 0
    for i, conv in enumerate(conversations[:warmup] + conversations):
        ids = rt.encode(conv)
        s = time.perf_counter()
        answer = rt.generate_one(ids, params)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            latencies.append(time.perf_counter() - s)
            tokens += len(answer.token_ids)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return {
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
        "load_s": load_s,
        "latencies_s": latencies,
        "new_tokens": tokens,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu,
    }


# this machine's latency, now: never cached. Its code is that of the shipping kinds (harness.release.shipping's
# SHIP_CODE, not imported: this module also runs alone, as the fresh process it measures in)
@kind(
    "serving",
    load=as_is,
    dump=as_is,
    load_data=load_prompts,
    code=("harness.release.export", "harness.release.shipping", "probes.parity", "harness.core.runtime.hf"),
    cached=False,
    timed=True,
)
def measure_serving(call: MeasureCall) -> dict[str, Any]:
    """Run the probe in a fresh process on the merged model (what ships), and with `compare`, on the base and the
    unmerged candidate (base + adapter) too, for their cost beside it; add the adapter's and the merge's size."""

    o, adapter = call.options, call.env.adapter
    convs = [list(i.messages) for i in call.data.items[: o["max_prompts"]]]
    merged = ensure_merged(call.env.base, adapter)
    variants = {"merged": (merged, "")}
    if o.get("compare", False) and adapter is not None:  # a full checkpoint is its own merge: nothing unmerged
        variants = {"base": (call.env.base.dir, ""), "candidate": (call.env.base.dir, str(adapter.dir)), **variants}
    runs = {}
    for name, (model_dir, with_adapter) in variants.items():
        args = ("--max-new-tokens", str(o["max_new_tokens"]), str(model_dir))
        args += ("--adapter", with_adapter) if with_adapter else ()
        run = run_module("harness.release.serving", *args, payload=convs)
        if not run.ok:
            raise RuntimeError(f"serving probe of the {name} failed (exit {run.returncode}): {run.stderr[-2000:]}")
        runs[name] = run.result
    size = sum(p.stat().st_size for p in adapter.dir.glob("adapter_model.safetensors")) if adapter else 0
    merged_size = sum(p.stat().st_size for p in merged.glob("*.safetensors"))
    others = {k: v for k, v in runs.items() if k != "merged"}
    return {
        **runs["merged"],
        "variants": others,
        "adapter_mb": size / 2**20,
        "merged_mb": merged_size / 2**20,
        "model": str(merged),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.release.serving")
    ap.add_argument("model_dir")
    ap.add_argument("prompts", help="JSON list of conversations")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--adapter", default="", help="a PEFT adapter applied unmerged on top of MODEL_DIR")
    args = ap.parse_args(argv)

    quiet_hf_progress()
    convs = json.loads(Path(args.prompts).read_text())
    print(json.dumps(_probe(Path(args.model_dir), convs, args.max_new_tokens, args.warmup, args.adapter)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
