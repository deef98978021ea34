"""`harness train`: CPT, SFT and DPO with LoRA, QLoRA or every weight (full) on TRL 1.x, the way the seeds'
checklists ask.

A recipe that reads top to bottom: resolve data (split, refuse eval sets, report template diversity,
preflight the loss mask or the preference pairs), build the model (full precision, or 4-bit NF4 for QLoRA), train
with checkpoints and a loss log, then save the adapter (or, for `method = "full"`, the full checkpoint) with its
training manifest and loss curve. Each stage writes `OUT/<stage>/adapter` (`OUT/<stage>/model`); with `cpt+sft`
the SFT stage continues the CPT adapter, and a DPO stage continues the SFT one, which is also its reference policy.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fine_tune.datasets import (
    Split,
    difficulty,
    refuse_eval_sets,
    split_train_valid,
    template_diversity,
    with_task_prefix,
)
from fine_tune.licenses import refuse_disallowed
from fine_tune.preflight import preflight_sft
from fine_tune.spec import LORA_KEYS, FineTuneSpec
from harness.core.console import console, quiet_hf_progress
from harness.core.data import Record, load_dataset
from harness.core.errors import HarnessError
from harness.core.manifest import package_versions
from harness.core.models import BaseModel, fingerprint, load_tokenizer, resolve_base
from harness.core.paths import new_run_dir
from harness.core.tracking import require as require_tracker
from harness.core.tracking import training_run
from harness.core.training_manifest import TRAINING_MANIFEST, TrainingManifest, read_manifest


@dataclass(frozen=True)
class StageResult:
    stage: str
    adapter_dir: Path
    manifest_path: Path
    log_json: Path
    loss_curve: Path
    train_loss: float | None
    valid_loss: float | None
    wall_time_s: float
    tokens_per_s: float
    steps: int
    trainable_params: int
    resumed_from_step: int | None
    valid_loss_start: float | None = None  # the base's validation loss, before training
    train_sample_loss: float | None = None  # the train sample's loss at the last evaluation, measured like valid_loss

    def summary(self) -> str:
        valid = ""
        if self.valid_loss is not None:
            start = f"{self.valid_loss_start:.4f} -> " if self.valid_loss_start is not None else ""
            valid = f", validation loss {start}{self.valid_loss:.4f}"
        if self.train_sample_loss is not None:
            valid += f" (train sample {self.train_sample_loss:.4f})"
        train = f"{self.train_loss:.4f}" if self.train_loss is not None else "–"
        resumed = f" (resumed from step {self.resumed_from_step})" if self.resumed_from_step else ""
        return (
            f"{self.stage}: {self.steps} steps{resumed} in {self.wall_time_s:.0f} s "
            f"({self.tokens_per_s:.0f} tokens/s), "
            f"train loss {train}{valid}; {self.adapter_dir.name} {self.adapter_dir}; loss curve {self.loss_curve}"
        )

    @classmethod
    def from_manifest(cls, stage_dir: Path) -> StageResult:
        m = read_manifest(stage_dir)
        return cls(
            m.stage or "",
            stage_dir / ("model" if m.method == "full" else "adapter"),
            stage_dir / TRAINING_MANIFEST,
            stage_dir / "train_log.json",
            stage_dir / "loss_curve.png",
            m.train_loss,
            m.valid_loss,
            m.wall_time_s or 0.0,
            m.tokens_per_s or 0.0,
            m.steps or 0,
            m.trainable_params or 0,
            m.resumed_from_step,
            m.valid_loss_start,
            m.train_sample_loss,
        )


@dataclass(frozen=True)
class TrainOutcome:
    out_dir: Path
    stages: tuple[StageResult, ...]

    @property
    def adapter_dir(self) -> Path:
        return self.stages[-1].adapter_dir


def _device() -> tuple[bool, bool]:
    import torch

    cuda = torch.cuda.is_available()
    return cuda, cuda and torch.cuda.is_bf16_supported()


def _load_model(base: BaseModel, method: str, bf16: bool, weights: Path | None = None) -> tuple[Any, str]:
    """Full-precision model, or the base quantised to 4-bit NF4 (double quantisation) for QLoRA. `weights`: a full
    checkpoint to start from instead of the base (the previous stage's, for a full fine-tune)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16 else torch.float32
    if method == "qlora":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
        model = AutoModelForCausalLM.from_pretrained(
            base.dir, quantization_config=quant, dtype=dtype, use_safetensors=True
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        for module in model.modules():
            # bitsandbytes repacks 4-bit CPU weights for AVX512-BF16 on the first eval-mode forward and then
            # computes with a kernel that has no backward: validation mid-training would silently break the
            # gradients of every later step. Keep the trainable layout.
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    else:
        model = AutoModelForCausalLM.from_pretrained(weights or base.dir, dtype=dtype, use_safetensors=True)
    return model, str(dtype).removeprefix("torch.")


def peak_memory_mb(cuda: bool) -> float:
    """The training's peak memory: the GPU's peak allocation, or on a CPU the process's peak resident set (the whole
    process: the model, the optimizer state, activations, Python)."""
    if cuda:
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)


def sft_pairs(spec: FineTuneSpec, records: Any) -> list[tuple[Any, list[dict[str, str]]]]:
    """(record, conversation) for each chat row, task prefix applied; the answer is the last message."""
    rows = []
    for r in records:
        msgs = list(r.messages or ())
        if len(msgs) < 2 or msgs[-1]["role"] != "assistant":
            raise HarnessError(
                "SFT rows need a prompt and an assistant answer",
                where=f"line {r.line} ({r.id})",
                fix='use {"prompt": ..., "completion": ...} or "messages" ending with an assistant turn',
            )
        if spec.task_prefixes and "task" in r.meta:
            msgs = with_task_prefix(msgs, r.meta["task"])
        rows.append((r, msgs))
    return rows


def train_sample(train: Sequence[Record], valid: Sequence[Record], size: int, seed: int) -> list[Record]:
    """A seeded sample of training rows, as many as validation rows (at most `size`), in file order: the rows whose
    loss is measured at each evaluation beside the validation loss. Where rows carry a `task` field it mirrors the
    validation set's task mix, so that the two losses average over the same kinds of rows."""
    n = min(len(valid), size, len(train))
    if n == 0:
        return []
    rng = random.Random(f"train-sample-{seed}")
    by_task: dict[Any, list[int]] = defaultdict(list)
    for i, r in enumerate(train):
        by_task[r.meta.get("task")].append(i)
    picked: list[int] = []
    for task, count in sorted(Counter(r.meta.get("task") for r in valid).items(), key=lambda kv: str(kv[0])):
        pool = by_task.get(task, [])
        picked += rng.sample(pool, min(round(n * count / len(valid)), len(pool)))
    if not picked:  # no task in common: a plain sample
        picked = rng.sample(range(len(train)), n)
    return [train[i] for i in sorted(picked)]


def _tasks(rows: Sequence[Record]) -> list[str] | None:
    tasks = [r.meta.get("task") for r in rows]
    return [str(t) for t in tasks] if rows and all(t is not None for t in tasks) else None


def _data(stage: str, spec: FineTuneSpec, tok, eval_sets: list[str], base_dir: Path | None) -> dict[str, Any]:
    src = spec.cpt_data if stage == "cpt" and spec.cpt_data else spec.train
    ds = load_dataset(src, base_dir, key=f"[fine_tune] {'cpt_data' if stage == 'cpt' else 'train'}")
    refuse_eval_sets(ds, eval_sets, base_dir)
    if spec.valid and stage == "sft":
        vds = load_dataset(spec.valid, base_dir, key="[fine_tune] valid")
        refuse_eval_sets(vds, eval_sets, base_dir)
        split = Split(ds.records, vds.records, "file", spec.seed)
    elif spec.valid_fraction == 0:
        split = Split(ds.records, (), "none", spec.seed)
    else:
        split = split_train_valid(ds, spec.valid_fraction, spec.seed)
    sample = train_sample(split.train, split.valid, spec.train_sample, spec.seed)
    info: dict[str, Any] = {"dataset": ds, "split": split, "sample": sample}
    info["row_tasks"] = {k: t for k, rows in (("valid", split.valid), ("train_sample", sample)) if (t := _tasks(rows))}
    if stage == "cpt":
        bad = next((r for r in ds.records if r.text is None), None)
        if bad is not None:
            raise HarnessError(
                "CPT trains on raw text, but this row is a chat row",
                where=f"{ds.path}:{bad.line}",
                fix='give CPT data as {"text": ...} rows or a .txt file',
            )
        info["train_rows"] = [{"text": r.text} for r in split.train]
        info["valid_rows"] = [{"text": r.text} for r in split.valid]
        info["sample_rows"] = [{"text": r.text} for r in sample]
        return info
    train = list(split.train)
    if spec.curriculum:  # easy to hard; the sampler then keeps this order
        train.sort(key=lambda r: difficulty(tok, r))
    pairs, vpairs = sft_pairs(spec, train), sft_pairs(spec, split.valid)
    preflight_sft(pairs + vpairs, tok, spec.max_length, where=str(ds.path))
    info["templates"] = template_diversity(split.train)
    info["train_rows"] = [{"prompt": m[:-1], "completion": m[-1:]} for _, m in pairs]
    info["valid_rows"] = [{"prompt": m[:-1], "completion": m[-1:]} for _, m in vpairs]
    info["sample_rows"] = [{"prompt": m[:-1], "completion": m[-1:]} for _, m in sft_pairs(spec, sample)]
    return info


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    # a checkpoint is complete once its trainer_state.json is written (a kill mid-save leaves it out)
    done = [p for p in ckpt_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    ckpts = sorted(done, key=lambda p: int(p.name.split("-")[-1]))
    return ckpts[-1] if ckpts else None


def _trainer_args(stage: str, spec: FineTuneSpec, ckpt_dir: Path, has_valid: bool, cuda: bool, bf16: bool) -> Any:
    """TRL's config for the stage: `DPOConfig` for dpo, `SFTConfig` for sft and cpt; the same schedule, logging,
    checkpoints and seeds for all."""
    from trl import DPOConfig, SFTConfig

    full = spec.method == "full"
    common: dict[str, Any] = dict(
        output_dir=str(ckpt_dir),
        max_steps=spec.steps_for(stage) or -1,
        num_train_epochs=spec.epochs or 1.0,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=spec.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=spec.warmup_steps,
        optim=spec.optimizer,
        logging_steps=spec.logging_steps,
        eval_strategy="steps" if has_valid else "no",
        eval_steps=spec.eval_steps,
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=2 if full else None,  # a full checkpoint holds every weight and its optimizer state
        report_to=spec.report_to,  # as it is: TRL's own tracker integrations
        seed=spec.seed,
        data_seed=spec.seed,
        max_length=spec.max_length,
        bf16=bf16,
        # every weight trains in a full fine-tune: recompute activations instead of keeping them (TRL's default,
        # kept); LoRA on a CPU: off (it only slows the small adapters down)
        activation_checkpointing=full,
        activation_checkpointing_kwargs={"use_reentrant": False} if full else None,
        use_cpu=not cuda,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    if stage == "dpo":
        # the reference policy's validation loss at step 0 is log 2 by construction: no eval on start
        return DPOConfig(**common, beta=spec.beta, loss_type=[spec.loss_type])
    return SFTConfig(
        **common,
        eval_on_start=has_valid,  # the base's validation loss: the point the curve must come down from
        # CPT: raw text packed into fixed-length blocks; SFT: loss on completions only
        packing=stage == "cpt" or spec.packing,
        packing_strategy="wrapped" if stage == "cpt" else "bfd",
        completion_only_loss=None if stage == "cpt" else True,
        dataset_text_field="text",
        train_sampling_strategy="sequential" if spec.curriculum and stage == "sft" else "random",
        include_num_input_tokens_seen="non_padding",
    )


def _stage_model(
    stage: str, spec: FineTuneSpec, base: BaseModel, init: Path | None, bf16: bool
) -> tuple[Any, Any, str]:
    """(model, peft_config, compute dtype) a stage starts from: the base with a new LoRA adapter, the previous
    stage's adapter made trainable (for DPO TRL copies it as the frozen reference policy), or for a full fine-tune
    every weight of the base or of the previous stage's checkpoint."""
    from peft import LoraConfig, PeftModel

    if spec.method == "full":
        model, dtype = _load_model(base, "full", bf16, weights=init)
        return model, None, dtype
    model, dtype = _load_model(base, spec.method, bf16)
    if init is not None:  # the stage continues the previous one's adapter (CPT's for SFT, SFT's for DPO)
        return PeftModel.from_pretrained(model, init, is_trainable=True), None, dtype
    lora = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.modules_for(stage),
        task_type="CAUSAL_LM",
    )
    return model, lora, dtype


def _save(trainer: Any, spec: FineTuneSpec, out_dir: Path) -> None:
    """The stage's output: the LoRA adapter, or for a full fine-tune a full safetensors checkpoint, each with its
    tokenizer and chat template (the trainer saves its processing class beside the weights): what `candidate = DIR`
    gates and what ships."""
    model = trainer.model
    if spec.method != "full" and "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")  # TRL's frozen copy of the reference policy: not part of what was trained
    trainer.save_model(str(out_dir))
    (out_dir / "training_args.bin").unlink(missing_ok=True)  # pickle: never loaded, never shipped


def train_stage(
    stage: str,
    spec: FineTuneSpec,
    base: BaseModel,
    stage_dir: Path,
    *,
    init_adapter: Path | None,
    eval_sets: list[str],
    base_dir: Path | None,
    resume: bool,
) -> StageResult:
    """One stage into `stage_dir`. `init_adapter`: what the stage starts from, the previous stage's output (a LoRA
    adapter, or for `method = "full"` a full checkpoint)."""
    quiet_hf_progress()
    from datasets import Dataset as HFDataset
    from transformers import PrinterCallback
    from trl import DPOTrainer

    from fine_tune.watch import TaskLossTrainer, Watch, log_entries, plot_loss, write_log

    full = spec.method == "full"
    tok = load_tokenizer(init_adapter if full and init_adapter else base.dir, need_chat_template=stage != "cpt")
    if stage == "dpo":
        from fine_tune.dpo import dpo_data

        data = dpo_data(spec, tok, eval_sets, base_dir)
    else:
        data = _data(stage, spec, tok, eval_sets, base_dir)
    if (tpl := data.get("templates")) and tpl.warning:
        console.print(f"[yellow]warning[/]: {data['dataset'].path}: {tpl.warning}")
    cuda, bf16 = _device()
    if not bf16:
        console.print("[dim]bf16 off: no CUDA GPU with bf16 support here, so training runs in float32[/]")
    model, peft_config, compute_dtype = _stage_model(stage, spec, base, init_adapter, bf16)
    modules = [] if full else spec.modules_for(stage)
    ckpt_dir = stage_dir / "checkpoints"
    has_valid = bool(data["valid_rows"])
    args = _trainer_args(stage, spec, ckpt_dir, has_valid, cuda, bf16)
    watch = Watch(stage_dir, f"{stage} {spec.method}")
    # the validation set and a fixed train sample, evaluated alike at every evaluation: a like-with-like gap
    evals = {"valid": data["valid_rows"], "train_sample": data["sample_rows"]}
    eval_dataset = {k: HFDataset.from_list(v) for k, v in evals.items() if v} if has_valid else None
    common: dict[str, Any] = dict(
        model=model,
        args=args,
        train_dataset=HFDataset.from_list(data["train_rows"]),
        eval_dataset=eval_dataset,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[watch],
    )
    if stage == "dpo":
        trainer: Any = DPOTrainer(**common)
    else:  # packed blocks mix rows: no per-task loss
        trainer = TaskLossTrainer(**common, row_tasks=None if args.packing else data["row_tasks"])
    trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss
    tb_dir = stage_dir / "tensorboard"
    for cb in trainer.callback_handler.callbacks:  # its default lies under the checkpoints, removed when done
        if type(cb).__name__ == "TensorBoardCallback":
            cb.logging_dir = str(tb_dir)
    last = _latest_checkpoint(ckpt_dir) if resume else None
    resumed_from = int(last.name.split("-")[-1]) if last else None
    if last:
        console.print(f"resuming {stage} from {last} (step {resumed_from})")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    wall = time.perf_counter() - t0
    tracking = training_run(spec.report_to, tb_dir) if spec.report_to != "none" else None
    if watch.bad_loss is not None:
        step, value = watch.bad_loss
        raise HarnessError(
            f"training diverged: loss/grad norm became {value} at step {step}",
            where=str(stage_dir),
            fix="lower learning_rate, check the data for empty or broken rows, or train in float32",
        )
    done = [r for r in log_entries(trainer.state.log_history) if r["eval_loss"] is not None]
    if has_valid and not (done and done[-1]["step"] == trainer.state.global_step):
        trainer.evaluate()  # the final validation (and train-sample) loss, measured at the last step (once)
    rows = log_entries(trainer.state.log_history)
    evals = [r for r in rows if r["eval_loss"] is not None]
    valid_loss = float(evals[-1]["eval_loss"]) if has_valid else None
    write_log(rows, stage_dir)
    what = "full" if full else f"{spec.method}, r={spec.r}"
    curve = plot_loss(rows, stage_dir / "loss_curve.png", f"{stage} ({what}) on {base.id}")
    adapter_dir = stage_dir / ("model" if full else "adapter")
    _save(trainer, spec, adapter_dir)
    shutil.copy2(curve, adapter_dir / "loss_curve.png")  # travels with the adapter into the release report
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    tokens = int(trainer.state.num_input_tokens_seen or 0) or _dpo_tokens(trainer)
    train_losses = [r["train_loss"] for r in rows if r.get("train_loss") is not None]
    fp = fingerprint(base)
    manifest = TrainingManifest(
        method=spec.method,
        stage=stage,
        base={
            "id": base.id,
            "revision": base.revision,
            "source": base.source,
            "dir": str(base.dir),
            "weights_sha256": fp.weights_sha256,
            "gguf_sha256": base.gguf_sha256,
            "tokenizer_sha256": fp.tokenizer_sha256,
            "chat_template_sha256": fp.chat_template_sha256,
        },
        init_adapter=str(init_adapter) if init_adapter else None,
        data={
            "train": {
                "path": str(data["dataset"].path),
                "sha256": data["dataset"].sha256,
                "records": len(data["split"].train),
            },
            "valid": {"records": len(data["split"].valid), "split": data["split"].method},
            "train_sample": {
                "records": len(data["sample"]),
                "tasks": dict(Counter(str(r.meta["task"]) for r in data["sample"] if "task" in r.meta)),
                "ids": [r.id for r in data["sample"]],
            },
        },
        template_diversity=asdict(data["templates"]) if data.get("templates") else None,
        config=asdict(spec),
        target_modules=modules,
        seed=spec.seed,
        compute_dtype=compute_dtype,
        quantization={"type": "nf4", "double_quant": True} if spec.method == "qlora" else None,
        device="cuda" if cuda else "cpu",
        bf16=bf16,
        steps=trainer.state.global_step,
        trainable_params=trainable,
        train_loss=train_losses[-1] if train_losses else None,
        valid_loss=valid_loss,
        valid_loss_start=evals[0]["eval_loss"] if evals and evals[0]["step"] == 0 else None,
        train_sample_loss=evals[-1]["train_sample_loss"] if evals else None,
        loss_log=rows,
        wall_time_s=round(wall, 2),
        tokens_seen=tokens,
        tokens_per_s=round(tokens / wall, 2) if wall > 0 else 0.0,
        resumed_from_step=resumed_from,
        loss_curve="loss_curve.png",
        tracking=tracking,
        packages=package_versions(),
        extra={
            "optimizer": spec.optimizer,
            "activation_checkpointing": bool(args.activation_checkpointing),
            "peak_memory_mb": peak_memory_mb(cuda),
            **({"dpo": {"beta": spec.beta, "loss_type": spec.loss_type}} if stage == "dpo" else {}),
        },
    )
    manifest.write(adapter_dir / TRAINING_MANIFEST, stage_dir / TRAINING_MANIFEST)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: checkpoints are only for resuming
    return StageResult.from_manifest(stage_dir)


def _dpo_tokens(trainer: Any) -> int:
    """Tokens a DPO run saw (TRL's DPO trainer counts them in its `num_tokens` metric, not in the Trainer state)."""
    seen = [h["num_tokens"] for h in trainer.state.log_history if h.get("num_tokens") is not None]
    return int(seen[-1]) if seen else 0


def train(
    spec: FineTuneSpec,
    base: BaseModel,
    out: Path,
    *,
    eval_sets: list[str] | None = None,
    base_dir: Path | None = None,
    resume: bool = False,
) -> TrainOutcome:
    """Run every stage of `spec` into `out` (a new directory, or an interrupted run's with `resume`)."""
    out = Path(out)
    if resume and not out.is_dir():
        raise HarnessError(
            "nothing to resume: the output directory does not exist",
            where=str(out),
            fix="drop --resume to start a new run, or point --out at the interrupted run",
        )
    if not resume and out.exists() and any(out.iterdir()):
        raise HarnessError(
            "output directory is not empty",
            where=str(out),
            fix="choose a new --out, or pass --resume to continue an interrupted run there",
        )
    require_tracker(spec.report_to, "[fine_tune] report_to")  # before any model loads
    out.mkdir(parents=True, exist_ok=True)
    results: list[StageResult] = []
    init: Path | None = Path(spec.init_adapter) if spec.init_adapter else None
    if init is not None and base_dir is not None and not init.is_absolute():
        init = base_dir / init
    for stage in spec.stages():
        stage_dir = out / stage
        if (stage_dir / TRAINING_MANIFEST).is_file():
            if not resume:
                raise HarnessError(
                    f"stage {stage} already finished here", where=str(stage_dir), fix="choose a new --out"
                )
            results.append(StageResult.from_manifest(stage_dir))  # finished before the interruption
        else:
            results.append(
                train_stage(
                    stage,
                    spec,
                    base,
                    stage_dir,
                    init_adapter=init,
                    eval_sets=eval_sets or [],
                    base_dir=base_dir,
                    resume=resume,
                )
            )
        init = results[-1].adapter_dir
    return TrainOutcome(out, tuple(results))


def refuse_disallowed_training_data(cfg: Any) -> None:
    """The config's [data] licence rules on every file [fine_tune] trains on (before any model loads)."""

    spec: FineTuneSpec = cfg.fine_tune
    data = [f for f in (spec.train, spec.cpt_data, spec.dpo_data, spec.valid) if f]
    refuse_disallowed(data, cfg.base_dir, cfg.data, "[fine_tune] training data")


def train_from_config(cfg: Any, out: Path | None = None, *, resume: bool = False) -> TrainOutcome:
    """`harness train`: the config's [fine_tune] section, refusing to train on any of its gates' eval sets."""

    spec: FineTuneSpec = cfg.fine_tune
    refuse_disallowed_training_data(cfg)
    given = set((cfg.raw or {}).get("fine_tune", {}))
    if spec.method == "full" and (ignored := [k for k in LORA_KEYS if k in given]):
        console.print(
            f'[yellow]warning[/]: [fine_tune] {", ".join(ignored)}: LoRA keys, ignored by method = "full" '
            '(every weight trains); remove them, or set method = "lora"'
        )
    base = resolve_base(spec.base or cfg.model.base, cfg.base_dir, cfg.model.revision if cfg.model else None)
    out = Path(out) if out else Path(spec.output) if spec.output else new_run_dir(prefix="train")
    return train(spec, base, out, eval_sets=list(spec.eval) + cfg.eval_data(), base_dir=cfg.base_dir, resume=resume)
