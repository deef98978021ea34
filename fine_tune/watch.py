"""Watching training: progress with loss and ETA, the loss log (CSV + JSON), the loss curve, NaN/inf guard.

At each evaluation the trainer measures two eval datasets the same way (eval mode, fixed rows, the same
collation and completion-only masking): `valid` and `train_sample`, a fixed sample of training rows. Their
losses are logged as `eval_loss` and `train_sample_loss`, and per task type (rows' `task` field) as
`eval_loss/<task>` and `train_sample_loss/<task>`: the like-with-like pair the overfit gate compares.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from trl import SFTTrainer

from harness.core.console import progress
from harness.core.files import atomic_write_text

LOG_FIELDS = ("step", "epoch", "train_loss", "eval_loss", "train_sample_loss", "learning_rate", "grad_norm")
# Trainer metric prefix -> log column: a single eval set logs `eval_loss`; the runner's two log `eval_valid_*` and
# `eval_train_sample_*` (`eval_valid_loss/triage`: that task's rows)
EVAL_KEYS = {"eval_loss": "eval_loss", "eval_valid_loss": "eval_loss", "eval_train_sample_loss": "train_sample_loss"}


def _eval_losses(h: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in h.items():
        name, _, task = key.partition("/")
        if name in EVAL_KEYS and value is not None:
            out[EVAL_KEYS[name] + (f"/{task}" if task else "")] = value
    return out


DPO_PREFIXES = ("rewards/", "logps/")  # TRL's DPO metrics: rewards/chosen, rewards/rejected, rewards/margins, ...


def _dpo_metrics(h: dict[str, Any]) -> dict[str, float]:
    """DPO's metrics of one log event, under their TRL names; an evaluation's with the `eval_` prefix
    (`eval_rewards/accuracies`, from the validation set's `eval_valid_rewards/accuracies`)."""
    out = {}
    for key, value in h.items():
        if value is None:
            continue
        if key.startswith(DPO_PREFIXES):
            out[key] = value
        elif key.startswith("eval_") and (name := key.removeprefix("eval_").removeprefix("valid_")).startswith(
            DPO_PREFIXES
        ):
            out[f"eval_{name}"] = value
    return out


def log_entries(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train/eval loss rows from a Trainer's `state.log_history` (the final summary row dropped); the evaluations
    of one step (validation set, train sample) are merged into one row."""
    rows: list[dict[str, Any]] = []
    for h in log_history:
        evals = _eval_losses(h)
        if "loss" not in h and not evals:
            continue
        last = rows[-1] if rows else None
        if evals and "loss" not in h and last and last["step"] == h.get("step") and last["train_loss"] is None:
            last.update(evals)  # another eval set of the same evaluation
            last.update(_dpo_metrics(h))
            continue
        rows.append(
            {
                "step": h.get("step"),
                "epoch": round(float(h.get("epoch", 0.0)), 4),
                "train_loss": h.get("loss"),
                "eval_loss": None,
                "train_sample_loss": None,
                "learning_rate": h.get("learning_rate"),
                "grad_norm": h.get("grad_norm"),
                **evals,
                **_dpo_metrics(h),
            }
        )
    return rows


def write_log(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    buf = io.StringIO()
    fields = list(LOG_FIELDS) + sorted({k for r in rows for k in r} - set(LOG_FIELDS))  # + per-task columns
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in fields})
    csv_path, json_path = out_dir / "train_log.csv", out_dir / "train_log.json"
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(json_path, json.dumps(rows, indent=1))
    return csv_path, json_path


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure  # no pyplot: the process's backend (the user's) is never switched

    dpo = any(r.get("rewards/margins") is not None or r.get("eval_rewards/margins") is not None for r in rows)
    fig = Figure(figsize=(7, 6.5 if dpo else 4), dpi=100)
    ax, *more = fig.subplots(2, 1, sharex=True) if dpo else [fig.subplots()]
    curves = (
        ("train_loss", "train (running, train mode)", "-"),
        ("train_sample_loss", "train sample (eval mode)", "s--"),
        ("eval_loss", "validation", "o-"),
    )
    for key, label, style in curves:
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("DPO loss" if dpo else "loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if more:  # DPO: the reward margin (chosen - rejected) and the share of pairs whose chosen answer wins
        rew = more[0]
        for key, label, style in (
            ("rewards/margins", "reward margin (train)", "-"),
            ("eval_rewards/margins", "reward margin (validation)", "o-"),
            ("rewards/accuracies", "reward accuracy (train)", ":"),
            ("eval_rewards/accuracies", "reward accuracy (validation)", "s--"),
        ):
            pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                rew.plot(*zip(*pts, strict=True), style, label=label)
        rew.set_xlabel("step")
        rew.set_ylabel("reward (nats) / accuracy")
        rew.grid(alpha=0.3)
        rew.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


class Watch(TrainerCallback):
    """Rich progress (loss, ETA), the loss log rewritten at every log event, and a NaN/inf stop."""

    def __init__(self, out_dir: Path, description: str):
        self.out_dir = out_dir
        self.description = description
        self.bar = progress()
        self.task: Any = None
        self.bad_loss: tuple[int, float] | None = None

    def on_train_begin(self, args, state, control, **kw):
        self.bar.start()
        self.task = self.bar.add_task(
            f"{self.description} (loss –)", total=state.max_steps, completed=state.global_step
        )

    def on_step_end(self, args, state, control, **kw):
        self.bar.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        values = {"loss": logs.get("loss"), "grad_norm": logs.get("grad_norm"), **_eval_losses(logs)}
        for v in values.values():
            if v is not None and not math.isfinite(float(v)):
                self.bad_loss = (state.global_step, float(v))
                control.should_training_stop = True
        if "loss" in logs:
            self.bar.update(self.task, description=f"{self.description} (loss {float(logs['loss']):.3f})")
        write_log(log_entries(state.log_history), self.out_dir)

    def on_train_end(self, args, state, control, **kw):
        self.bar.stop()


class TaskLossTrainer(SFTTrainer):
    """`SFTTrainer` that also logs, for each eval set whose rows' tasks it is given, every task's loss from the same
    forward passes as the eval loss: the token-weighted mean over that task's rows (`eval_valid_loss/triage`). Rows
    must map 1:1 to examples (no packing) on one process."""

    def __init__(self, *args: Any, row_tasks: dict[str, list[str]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.row_tasks = row_tasks or {}

    def evaluation_loop(
        self,
        dataloader: Any,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        tasks = self.row_tasks.get(metric_key_prefix.removeprefix("eval_")) if self.args.world_size == 1 else None
        rows: list[tuple[float, int]] = []  # (summed NLL, supervised tokens) per row, in dataset order

        def record(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
            # the forward whose per-token log-probabilities SFTTrainer.compute_loss turns into the eval loss
            if kwargs.get("fused_lm_head") and getattr(output, "label_mask", None) is not None:
                nll = -output.log_probs.detach().float().sum(-1)
                rows.extend(zip(nll.tolist(), output.label_mask.sum(-1).tolist(), strict=True))

        hook = self.model.register_forward_hook(record, with_kwargs=True) if tasks else None
        try:
            out = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        finally:
            if hook is not None:
                hook.remove()
        if tasks and len(tasks) == len(rows):
            for task in sorted(set(tasks)):
                nll = sum(r[0] for r, t in zip(rows, tasks, strict=True) if t == task)
                n = sum(r[1] for r, t in zip(rows, tasks, strict=True) if t == task)
                out.metrics[f"{metric_key_prefix}_loss/{task}"] = nll / max(n, 1)
        return out
