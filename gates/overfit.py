"""The `overfit` gate: validation loss must not drift away from training loss, nor rise from its minimum."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.registry import GateContext, MeasureRequest, gate
from gates.types import Example, GateResult
from probes.training_log import TrainingLog


@dataclass(frozen=True)
class OverfitParams:
    log: str | None = field(
        default=None,
        metadata={"path": True, "help": "train_log.json or training_manifest.json; default: the adapter's manifest"},
    )
    max_gap: float = field(default=0.3, metadata={"help": "max validation minus train loss at the end (nats/token)"})
    max_val_rise: float = field(
        default=0.05, metadata={"help": "max relative rise of the final validation loss above its minimum"}
    )
    tail_fraction: float = field(default=0.3, metadata={"help": "last share of training whose trend is reported"})
    smooth: int = field(default=3, metadata={"help": "train-loss points averaged for the end value"})

    def __post_init__(self) -> None:
        problems = []
        if self.max_gap < 0:
            problems.append(("max_gap", "must be >= 0"))
        if self.max_val_rise < 0:
            problems.append(("max_val_rise", "must be >= 0, e.g. 0.05"))
        if not 0 < self.tail_fraction <= 1:
            problems.append(("tail_fraction", "must be in (0, 1]"))
        if self.smooth < 1:
            problems.append(("smooth", "must be at least 1"))
        if problems:
            raise ValueError(problems)


def _requests(p: OverfitParams) -> list[MeasureRequest]:
    return [MeasureRequest("training_log", p.log or "", variants=("candidate",))]


@gate("overfit", params=OverfitParams, requests=_requests)
def overfit(p: OverfitParams, ctx: GateContext) -> GateResult:
    """Fails when the final validation-minus-train gap or the rise of validation loss exceeds its tolerance."""
    log: TrainingLog = ctx.get(_requests(p)[0], "candidate")
    evals = [(pt.step, pt.eval_loss) for pt in log.points if pt.eval_loss is not None]
    trains = [(pt.step, pt.train_loss) for pt in log.points if pt.train_loss is not None]
    metric = "validation - train loss at the end (nats/token)"
    if not evals or not trains:
        return GateResult(
            name=ctx.name,
            verdict="skip",
            metric=metric,
            required=ctx.required,
            explanation=f"The training log ({log.source}) has no {'validation' if not evals else 'train'} loss, "
            "so overfitting cannot be judged; train with a validation split ([fine_tune] valid or valid_fraction).",
        )
    train_end = float(np.mean([v for _, v in trains[-p.smooth :]]))
    val_end = evals[-1][1]
    min_step, val_min = min(evals, key=lambda e: e[1])
    gap = val_end - train_end
    rise = (val_end - val_min) / val_min if val_min > 0 else 0.0
    last_step = max(s for s, _ in evals + trains)
    tail = [(s, v) for s, v in evals if s >= (1 - p.tail_fraction) * last_step]
    if len(tail) < 2:
        tail = evals[-2:]  # a trend needs two points
    slope = float(np.polyfit(*zip(*tail, strict=True), 1)[0]) * 100 if len(tail) >= 2 else None
    problems = []
    if gap > p.max_gap:
        problems.append(f"the validation loss ends {gap:.3f} above the train loss (max_gap {p.max_gap})")
    if rise > p.max_val_rise:
        problems.append(
            f"the validation loss rose {rise:.1%} above its minimum {val_min:.3f} at step {min_step} "
            f"(max_val_rise {p.max_val_rise:.0%})"
        )
    trend = (
        f"; over the last {p.tail_fraction:.0%} of training it moved {slope:+.3f} per 100 steps"
        if slope is not None
        else ""
    )
    head = (
        f"Train loss {train_end:.3f}, validation loss {val_end:.3f} at step {evals[-1][0]} "
        f"(minimum {val_min:.3f} at step {min_step}){trend}."
    )
    if problems:
        explanation = (
            f"{head} Overfitting: {'; and '.join(problems)}. Train fewer steps or epochs, add data, raise "
            "dropout or lower the rank, or keep the checkpoint where validation loss was lowest."
        )
    else:
        explanation = (
            f"{head} The gap and the rise stay within max_gap {p.max_gap} and max_val_rise {p.max_val_rise:.0%}."
        )
    evidence = tuple(
        Example(
            id=f"step {s}",
            prompt="validation loss",
            candidate_score=round(v, 4),
            note="minimum" if s == min_step else "",
        )
        for s, v in evals[-5:]
    )
    return GateResult(
        name=ctx.name,
        verdict="fail" if problems else "pass",
        metric=metric,
        required=ctx.required,
        baseline=round(train_end, 6),
        candidate=round(val_end, 6),
        delta=round(gap, 6),
        threshold=p.max_gap,
        explanation=explanation,
        evidence=evidence,
        details={
            "val_min": val_min,
            "val_min_step": min_step,
            "val_rise": round(rise, 6),
            "max_val_rise": p.max_val_rise,
            "tail_slope_per_100_steps": slope,
            "log": log.source,
            "eval_points": len(evals),
        },
    )
