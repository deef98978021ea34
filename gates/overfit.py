"""The `overfit` gate: validation loss must not drift away from the loss on training rows, nor rise from its
minimum. The training side is a fixed sample of training rows measured exactly as the validation loss is."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.registry import GateContext, MeasureRequest, gate
from gates.types import Example, GateResult
from probes.training_log import LossPoint, TrainingLog


@dataclass(frozen=True)
class OverfitParams:
    log: str | None = field(
        default=None,
        metadata={"path": True, "help": "train_log.json or training_manifest.json; default: the adapter's manifest"},
    )
    max_gap: float = field(
        default=0.3,
        metadata={"help": "max validation minus train-sample loss at the last evaluation (nats/token)"},
    )
    max_val_rise: float = field(
        default=0.05, metadata={"help": "max relative rise of the final validation loss above its minimum"}
    )
    tail_fraction: float = field(default=0.3, metadata={"help": "last share of training whose trend is reported"})
    smooth: int = field(
        default=3,
        metadata={"help": "running train-loss points averaged for the end value (logs without a train sample)"},
    )

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


def _task_gaps(pt: LossPoint) -> dict[str, dict[str, float]]:
    both = sorted(set(pt.eval_by_task) & set(pt.train_sample_by_task))
    return {
        t: {
            "valid": round(pt.eval_by_task[t], 6),
            "train_sample": round(pt.train_sample_by_task[t], 6),
            "gap": round(pt.eval_by_task[t] - pt.train_sample_by_task[t], 6),
        }
        for t in both
    }


@gate("overfit", params=OverfitParams, requests=_requests)
def overfit(p: OverfitParams, ctx: GateContext) -> GateResult:
    """Fails when the final validation-minus-train gap or the rise of validation loss exceeds its tolerance.

    The gap compares like with like where the log has it: the validation loss and the loss of a fixed sample of
    training rows, both measured in eval mode on the same rows at every evaluation. Older logs (and other
    trainers') only have the running training loss; then the gap falls back to that, and the explanation says so.
    """
    log: TrainingLog = ctx.get(_requests(p)[0], "candidate")
    evals = [(pt.step, pt.eval_loss) for pt in log.points if pt.eval_loss is not None]
    trains = [(pt.step, pt.train_loss) for pt in log.points if pt.train_loss is not None]
    # (step, validation loss, train-sample loss, point) at each evaluation that measured both
    paired = [
        (pt.step, pt.eval_loss, pt.train_sample_loss, pt)
        for pt in log.points
        if pt.eval_loss is not None and pt.train_sample_loss is not None
    ]
    like = bool(paired)
    metric = (
        "validation - train-sample loss at the last evaluation (nats/token)"
        if like
        else "validation - running train loss at the end (nats/token)"
    )
    if not evals or not (paired or trains):
        return GateResult(
            name=ctx.name,
            verdict="skip",
            metric=metric,
            required=ctx.required,
            explanation=f"The training log ({log.source}) has no {'validation' if not evals else 'train'} loss, "
            "so overfitting cannot be judged; train with a validation split ([fine_tune] valid or valid_fraction).",
        )
    val_end = evals[-1][1]
    if like:
        end_step, end_valid, train_end, end = paired[-1]
        gap, by_task = end_valid - train_end, _task_gaps(end)
        compared = (
            f"Validation loss {end_valid:.3f} vs train-sample loss {train_end:.3f} at step {end_step} (a fixed sample "
            "of training rows; both in eval mode, on the same rows at every evaluation"
        )
        if by_task:
            compared += "; per task, validation - train sample: " + ", ".join(
                f"{t} {g['gap']:+.3f}" for t, g in by_task.items()
            )
        compared += ")"
        if paired[0][0] == 0 and len(paired) > 1:  # the base's own gap: the sets differ before any training
            compared += f"; before training (step 0) the gap was {paired[0][1] - paired[0][2]:+.3f}"
    else:
        train_end = float(np.mean([v for _, v in trains[-p.smooth :]]))
        gap, by_task = val_end - train_end, {}
        compared = (
            "This log has no train-sample loss (a DPO stage, an older runner or another trainer), so the gap falls "
            f"back to the earlier rule and its verdict: validation loss {val_end:.3f} at step {evals[-1][0]} vs the "
            f"running training loss {train_end:.3f} (train mode, mean of the last {min(p.smooth, len(trains))} logs, "
            "over the whole training mix), which is not like with like and can hide overfitting when validation and "
            "training rows differ in mix; retrain with `harness train` to log the train-sample loss"
        )
    min_step, val_min = min(evals, key=lambda e: e[1])
    rise = (val_end - val_min) / val_min if val_min > 0 else 0.0
    last_step = max(s for s, _ in evals + trains)
    tail = [(s, v) for s, v in evals if s >= (1 - p.tail_fraction) * last_step]
    window = f"over the last {p.tail_fraction:.0%} of training"
    if len(tail) < 2:
        tail = evals[-2:]  # a trend needs two points
        if len(tail) == 2:  # say which two: they may lie outside the tail window
            window = f"between its last two evaluations (steps {tail[0][0]} and {tail[1][0]})"
    slope = float(np.polyfit(*zip(*tail, strict=True), 1)[0]) * 100 if len(tail) >= 2 else None
    problems = []
    if gap > p.max_gap:
        against = "the train-sample loss" if like else "the running train loss"
        problems.append(f"the validation loss ends {gap:.3f} above {against} (max_gap {p.max_gap})")
    if rise > p.max_val_rise:
        problems.append(
            f"the validation loss rose {rise:.1%} above its minimum {val_min:.3f} at step {min_step} "
            f"(max_val_rise {p.max_val_rise:.0%})"
        )
    trend = f"; {window} it moved {slope:+.3f} per 100 steps" if slope is not None else ""
    head = f"{compared}. Validation loss minimum {val_min:.3f} at step {min_step}{trend}."
    if problems:
        explanation = (
            f"{head} Overfitting: {'; and '.join(problems)}. Train fewer steps or epochs, add data, raise "
            "dropout or lower the rank, or keep the checkpoint where validation loss was lowest."
        )
    else:
        explanation = (
            f"{head} The gap {gap:+.3f} and the rise stay within max_gap {p.max_gap} and "
            f"max_val_rise {p.max_val_rise:.0%}."
        )
    if like:
        evidence = tuple(
            Example(
                id=f"step {s}",
                prompt="train-sample loss (base_score) vs validation loss (candidate_score)",
                base_score=round(ts, 4),
                candidate_score=round(v, 4),
                note="validation minimum" if s == min_step else "",
            )
            for s, v, ts, _ in paired[-5:]
        )
    else:
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
            "compared": "train_sample" if like else "running_train_loss",
            "gaps": [{"step": s, "valid": v, "train_sample": ts, "gap": round(v - ts, 6)} for s, v, ts, _ in paired],
            "gap_by_task": by_task,
            "val_min": val_min,
            "val_min_step": min_step,
            "val_rise": round(rise, 6),
            "max_val_rise": p.max_val_rise,
            "tail_slope_per_100_steps": slope,
            "log": log.source,
            "eval_points": len(evals),
        },
    )
