"""Minimal LoRA SFT on chat pairs with TRL's `SFTTrainer`: loss on completions only, CPU-safe defaults.

The full runner (QLoRA, CPT, resume, sweeps) builds on this. Output: a PEFT adapter directory with
the tokenizer it was trained with and `training_manifest.json` (base hash, data hashes, config, seed,
losses, throughput).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.data import Dataset
from harness.errors import HarnessError
from harness.manifest import TRAINING_MANIFEST, package_versions
from harness.models import BaseModel, fingerprint, load_tokenizer

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class LoraSFTConfig:
    r: int = 16  # LoRA rank
    alpha: int = 32  # LoRA scaling numerator (scale = alpha / r)
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ATTENTION
    learning_rate: float = 3e-4
    max_steps: int = 60
    batch_size: int = 8
    grad_accum: int = 1
    warmup_steps: int = 5  # transformers 5 removed warmup_ratio
    max_length: int = 512
    seed: int = 0
    logging_steps: int = 5


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    manifest_path: Path
    train_loss: float | None
    valid_loss: float | None
    wall_time_s: float
    tokens_per_s: float
    steps: int


def chat_rows(ds: Dataset) -> list[dict[str, Any]]:
    """TRL conversational prompt/completion rows: everything before the last assistant turn is the prompt."""
    rows = []
    for r in ds.records:
        msgs = list(r.messages or ())
        if not msgs or msgs[-1]["role"] != "assistant" or len(msgs) < 2:
            raise HarnessError(
                "SFT rows need a prompt and an assistant answer",
                where=f"{ds.path}:{r.line}",
                fix='use {"prompt": ..., "completion": ...} or "messages" ending with an assistant turn',
            )
        rows.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
    return rows


def _progress_callback(total: int):
    from transformers import TrainerCallback

    from harness.console import progress

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar = progress()
            self.task = None
            self.losses: list[tuple[int, float]] = []

        def on_train_begin(self, args, state, control, **kw):
            self.bar.start()
            self.task = self.bar.add_task("training LoRA (loss –)", total=total)

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    control.should_training_stop = True
                self.losses.append((state.global_step, loss))
                self.bar.update(self.task, description=f"training LoRA (loss {loss:.3f})")

        def on_train_end(self, args, state, control, **kw):
            self.bar.stop()

    return RichProgress()


def train_lora_sft(
    base: BaseModel, train: Dataset, out_dir: Path, cfg: LoraSFTConfig = LoraSFTConfig(), valid: Dataset | None = None
) -> TrainResult:
    """Train a LoRA adapter on `train` (chat pairs) and save it to `out_dir` (which must not hold one)."""
    import torch
    from datasets import Dataset as HFDataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from harness.console import quiet_hf_progress

    quiet_hf_progress()

    out_dir = Path(out_dir)
    if (out_dir / "adapter_config.json").exists():
        raise HarnessError("an adapter already exists here", where=str(out_dir), fix="choose a new output directory")
    train_rows, valid_rows = chat_rows(train), chat_rows(valid) if valid else None
    tok = load_tokenizer(base.dir, need_chat_template=True)
    on_cuda = torch.cuda.is_available()
    bf16 = on_cuda and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(
        base.dir, dtype=torch.bfloat16 if bf16 else torch.float32, use_safetensors=True
    )
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="harness-sft-"),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        max_length=cfg.max_length,
        completion_only_loss=True,
        # TRL defaults bf16 and gradient checkpointing on; both fail or slow down on CPU
        bf16=bf16,
        gradient_checkpointing=False,
        use_cpu=not on_cuda,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )
    peft_config = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    callback = _progress_callback(cfg.max_steps)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=HFDataset.from_list(train_rows),
        eval_dataset=HFDataset.from_list(valid_rows) if valid_rows else None,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    losses = callback.losses
    if any(not math.isfinite(loss) for _, loss in losses):
        raise HarnessError(
            "training loss became NaN/inf",
            where=str(train.path),
            fix="lower learning_rate, check the data for empty completions, or use float32",
        )
    valid_loss = float(trainer.evaluate()["eval_loss"]) if valid_rows else None
    trainer.save_model(str(out_dir))
    (out_dir / "training_args.bin").unlink(missing_ok=True)  # pickle; never loaded, never shipped
    shutil.rmtree(args.output_dir, ignore_errors=True)
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    fp = fingerprint(base)
    manifest = {
        "method": "lora",
        "stage": "sft",
        "base": {
            "id": base.id,
            "source": base.source,
            "weights_sha256": fp.weights_sha256,
            "gguf_sha256": base.gguf_sha256,
            "tokenizer_sha256": fp.tokenizer_sha256,
            "chat_template_sha256": fp.chat_template_sha256,
        },
        "data": {
            name: {"path": str(d.path), "sha256": d.sha256, "records": len(d)}
            for name, d in (("train", train), ("valid", valid))
            if d is not None
        },
        "config": asdict(cfg),
        "seed": cfg.seed,
        "steps": trainer.state.global_step,
        "train_loss": losses[-1][1] if losses else None,
        "loss_log": losses,
        "valid_loss": valid_loss,
        "wall_time_s": round(wall, 2),
        "tokens_seen": tokens,
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "device": "cuda" if on_cuda else "cpu",
        "bf16": bf16,
        "packages": package_versions(),
    }
    path = out_dir / TRAINING_MANIFEST
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return TrainResult(
        out_dir, path, manifest["train_loss"], valid_loss, wall, manifest["tokens_per_s"], trainer.state.global_step
    )
