"""Watching training: progress with loss and ETA, the loss log (CSV + JSON), the loss curve, NaN/inf guard."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness.cache import atomic_write_text
from harness.console import progress

LOG_FIELDS = ("step", "epoch", "train_loss", "eval_loss", "learning_rate", "grad_norm")


def log_entries(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train/eval loss rows from a Trainer's `state.log_history` (the final summary row dropped)."""
    rows = []
    for h in log_history:
        if "loss" not in h and "eval_loss" not in h:
            continue
        rows.append(
            {
                "step": h.get("step"),
                "epoch": round(float(h.get("epoch", 0.0)), 4),
                "train_loss": h.get("loss"),
                "eval_loss": h.get("eval_loss"),
                "learning_rate": h.get("learning_rate"),
                "grad_norm": h.get("grad_norm"),
            }
        )
    return rows


def write_log(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in LOG_FIELDS})
    csv_path, json_path = out_dir / "train_log.csv", out_dir / "train_log.json"
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(json_path, json.dumps(rows, indent=1))
    return csv_path, json_path


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label, style in (("train_loss", "train", "-"), ("eval_loss", "validation", "o-")):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
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
        for key in ("loss", "eval_loss", "grad_norm"):
            v = logs.get(key)
            if v is not None and not math.isfinite(float(v)):
                self.bad_loss = (state.global_step, float(v))
                control.should_training_stop = True
        if "loss" in logs:
            self.bar.update(self.task, description=f"{self.description} (loss {float(logs['loss']):.3f})")
        write_log(log_entries(state.log_history), self.out_dir)

    def on_train_end(self, args, state, control, **kw):
        self.bar.stop()
