"""What each kind of candidate costs to train on the same data: LoRA SFT, full SFT (every weight), and DPO after it
(LoRA and full), each `harness train` in its own process on the embedded SmolLM2-135M (so the peak memory is that
run's alone), from the demo's triage data and its preference pairs.

    python benchmarks/train_kinds.py [--steps 8] [--batch-size 8] [--kinds lora-sft,full-sft,lora-sft+dpo,full-sft+dpo]

Prints a Markdown table: wall time of each stage, tokens/s, trainable parameters and peak memory (the process's peak
RSS on a CPU, the GPU's peak allocation on a GPU: `fine_tune.runner.peak_memory_mb`), from each stage's
training_manifest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fine_tune.demo.preference import write_preference_data
from fine_tune.demo.triage import write_demo_data

CONFIG = """[model]
base = "smollm2-135m-instruct"

[fine_tune]
train = "{train}"
valid_fraction = 0
method = "{method}"
stage = "{stage}"
dpo_data = "{pairs}"
learning_rate = {lr}
warmup_steps = 1
max_steps = {steps}
batch_size = {batch}
save_steps = 1000
logging_steps = 1
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--kinds", default="lora-sft,full-sft,lora-sft+dpo,full-sft+dpo")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="train-kinds-"))
    data = {**write_demo_data(root / "data", policy=False), **write_preference_data(root / "data")}
    rows = []
    for kind in a.kinds.split(","):
        method, stage = kind.split("-", 1)
        cfg = root / f"{kind}.toml"
        lr = "1e-3" if method == "lora" else "2e-5"  # full fine-tunes take a far smaller step
        cfg.write_text(
            CONFIG.format(
                train=data["train"],
                pairs=data["dpo_train"],
                method=method,
                stage=stage,
                lr=lr,
                steps=a.steps,
                batch=a.batch_size,
            )
        )
        t0 = time.perf_counter()
        out = root / kind
        done = subprocess.run(
            [str(Path(sys.executable).parent / "harness"), "train", "--config", str(cfg), "--out", str(out)],
            env={**os.environ, "HARNESS_QUIET": "1"},
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{kind}: harness train failed")
        for st in stage.split("+"):
            m = json.loads((out / st / "training_manifest.json").read_text())
            rows.append(
                (
                    kind,
                    st,
                    m["steps"],
                    f"{m['wall_time_s']:.0f}",
                    f"{m['tokens_per_s']:.0f}",
                    f"{m['trainable_params']:,}",
                    f"{m['peak_memory_mb']:,.0f}",
                    f"{m['train_loss']:.3f}",
                )
            )
        print(f"{kind}: {wall:.0f} s in all", file=sys.stderr)
    print(f"\n{a.steps} steps a stage, batch {a.batch_size}, {os.cpu_count()} CPU cores; data in {root}\n")
    head = ("run", "stage", "steps", "train s", "tokens/s", "trainable params", "peak MB", "final train loss")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
