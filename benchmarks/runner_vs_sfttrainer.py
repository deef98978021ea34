"""Training throughput of `harness train` vs a plain TRL `SFTTrainer` call on identical data and settings.

    python benchmarks/runner_vs_sfttrainer.py [--steps 15] [--repeats 2]

Both train a LoRA (r=16, attention projections) on the embedded SmolLM2-135M with the demo's 240 triage
pairs, batch 8, lr 3e-4 cosine, max_length 512, seed 0, float32 on CPU, no validation and no
checkpoints. tokens/s = non-padding input tokens seen / wall time of `train()`. Runs alternate
(plain, runner, plain, runner, ...) so machine noise hits both; the medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def plain_sfttrainer(base_dir: Path, train_path: Path, steps: int, out: Path) -> float:
    import torch
    from datasets import Dataset as HFDataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from fine_tune.runner import sft_pairs  # the same rows the runner feeds
    from fine_tune.spec import FineTuneSpec
    from harness.core.data import load_dataset

    tok = AutoTokenizer.from_pretrained(base_dir)
    rows = [
        {"prompt": m[:-1], "completion": m[-1:]}
        for _, m in sft_pairs(FineTuneSpec(train="x"), load_dataset(train_path).records)
    ]
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=3e-4,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        seed=0,
        data_seed=0,
        max_length=512,
        completion_only_loss=True,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=HFDataset.from_list(rows),
        processing_class=tok,
        peft_config=LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    t0 = time.perf_counter()
    trainer.train()
    return trainer.state.num_input_tokens_seen / (time.perf_counter() - t0)


def runner(base, train_path: Path, steps: int, out: Path) -> float:
    from fine_tune.runner import train
    from fine_tune.spec import FineTuneSpec

    spec = FineTuneSpec(train=str(train_path), valid_fraction=0, max_steps=steps, save_steps=10_000)
    (stage,) = train(spec, base, out).stages
    return stage.tokens_per_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from fine_tune.demo.triage import write_demo_data
    from harness.core.console import quiet_hf_progress
    from harness.core.models import resolve_base

    quiet_hf_progress()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    train_path = write_demo_data(work / "data")["train"]
    base = resolve_base("smollm2-135m-instruct")
    plain, ours = [], []
    for i in range(args.repeats):
        plain.append(plain_sfttrainer(base.dir, train_path, args.steps, work / f"plain{i}"))
        ours.append(runner(base, train_path, args.steps, work / f"runner{i}"))
        print(f"repeat {i + 1}: plain SFTTrainer {plain[-1]:.1f} tokens/s, harness train {ours[-1]:.1f} tokens/s")
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"median: plain {p:.1f} tokens/s, runner {o:.1f} tokens/s, runner / plain = {o / p:.3f}")


if __name__ == "__main__":
    main()
