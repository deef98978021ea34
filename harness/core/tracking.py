"""Experiment tracking: the release verdict and every gate's numbers in the tracker the adapter was trained with.

`[fine_tune] report_to` ("none" | "tensorboard" | "wandb") is passed to TRL as it is; the runner records where
that run lives (`tracking` in the training manifest: the TensorBoard log directory, or the W&B run's id, project
and entity). `harness gate --log-to TRACKER` then writes the release to the same run when the gated adapter's
manifest names one of that tracker (so the gate metrics sit beside the loss curves, at the training's last step),
and to a new run otherwise (TensorBoard: `OUT/tensorboard`; W&B: project $WANDB_PROJECT, default "harness").

Scalars: `release/passed` (1 pass, 0 blocked), and per gate `gates/NAME/passed`, `.../baseline`, `.../candidate`,
`.../delta`, `.../threshold`, `.../ci_low`, `.../ci_high` (those the gate has); the verdicts as text.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

TRACKERS = ("none", "tensorboard", "wandb")
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb"}


def require(tracker: str, where: str) -> None:
    """A clear error, before any model loads, when the tracker is unknown or its package is not installed."""
    if tracker not in TRACKERS:
        raise HarnessError(f"unknown tracker {tracker!r}", where=where, fix=f"one of {', '.join(TRACKERS)}")
    pkg = _PACKAGE.get(tracker)
    if pkg and importlib.util.find_spec(pkg) is None:
        raise HarnessError(f"{tracker} is not installed", where=where, fix=f"pip install '{pkg}'")


def training_run(tracker: str, logging_dir: Path) -> dict[str, Any]:
    """What the training manifest records of the tracker run TRL just wrote to (called after `trainer.train()`).
    A W&B run is finished here, so the next training in this process (a sweep's next rank) starts its own."""
    if tracker == "tensorboard":
        return {"report_to": tracker, "logging_dir": str(logging_dir.resolve())}
    if tracker == "wandb":
        import wandb

        run = wandb.run
        if run is None:
            return {"report_to": tracker}
        record = {"report_to": tracker, "run_id": run.id, "project": run.project, "entity": run.entity}
        record["url"] = run.url if not run.offline else None
        wandb.finish()
        return record
    return {"report_to": tracker}


def gate_scalars(report: Any) -> dict[str, float]:
    """The numbers a tracker plots: the release and each gate (finite values only)."""
    out = {"release/passed": 1.0 if report.verdict == "pass" else 0.0}
    for g in report.gates:
        out[f"gates/{g.name}/passed"] = 1.0 if g.verdict == "pass" else 0.0
        values = {k: getattr(g, k) for k in ("baseline", "candidate", "delta", "threshold")}
        if g.ci is not None:
            values["ci_low"], values["ci_high"] = g.ci
        for k, v in values.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[f"gates/{g.name}/{k}"] = float(v)
    return out


def verdict_text(report: Any) -> str:
    rows = [f"release: **{report.verdict}**", "", "| gate | verdict | metric |", "|---|---|---|"]
    rows += [f"| {g.name} | {g.verdict} | {g.metric} |" for g in report.gates]
    return "\n".join(rows)


@dataclass(frozen=True)
class Logged:
    """Where `--log-to` wrote the release."""

    tracker: str
    where: str  # the TensorBoard log directory, or the W&B run (entity/project/id)
    same_run: bool  # the gated adapter's own training run
    step: int
    scalars: int


def _step(training: dict[str, Any]) -> int:
    steps = training.get("steps")
    return int(steps) if isinstance(steps, int | float) else 0


def _tensorboard(report: Any, run: dict[str, Any], out_dir: Path | None, step: int) -> Logged:
    from torch.utils.tensorboard import SummaryWriter

    # the training's log directory while it is there (an adapter copied to another machine logs to OUT)
    same = run.get("report_to") == "tensorboard" and bool(run.get("logging_dir")) and Path(run["logging_dir"]).is_dir()
    if same:
        logdir = Path(run["logging_dir"])
    elif out_dir is not None:
        logdir = out_dir / "tensorboard"
    else:
        fix = "pass --out (the run goes to OUT/tensorboard)"
        raise HarnessError("no TensorBoard run to log to", where="--log-to tensorboard", fix=fix)
    scalars = gate_scalars(report)
    writer = SummaryWriter(log_dir=str(logdir), filename_suffix=".release")  # its own event file: nothing rewritten
    try:
        for k, v in scalars.items():
            writer.add_scalar(k, v, step)
        writer.add_text("release/verdict", verdict_text(report), step)
    finally:
        writer.close()
    return Logged("tensorboard", str(logdir), same, step, len(scalars))


def _wandb(report: Any, run: dict[str, Any], step: int) -> Logged:
    import wandb

    same = run.get("report_to") == "wandb" and bool(run.get("run_id"))
    if same:
        kw = {"id": run["run_id"], "project": run.get("project"), "entity": run.get("entity"), "resume": "allow"}
    else:
        kw = {"project": os.environ.get("WANDB_PROJECT", "harness"), "job_type": "release-gate"}
    active = wandb.run is not None and (not same or wandb.run.id == run["run_id"])
    wb = wandb.run if active else wandb.init(**{k: v for k, v in kw.items() if v is not None})
    scalars = gate_scalars(report)
    try:
        wb.log({**scalars, "train/global_step": step})
        wb.summary["release/verdict"] = report.verdict
        for g in report.gates:
            wb.summary[f"gates/{g.name}/verdict"] = g.verdict
        where = "/".join(str(x) for x in (wb.entity, wb.project, wb.id) if x)
    finally:
        if not active:
            wb.finish()
    return Logged("wandb", where, same, step, len(scalars))


def log_report(report: Any, tracker: str, out_dir: Path | None) -> Logged | None:
    """Write the release verdict and every gate's metric to `tracker` (see the module's docstring)."""
    if tracker == "none":
        return None
    require(tracker, "--log-to")
    training = report.manifest.get("training") or {}
    run = training.get("tracking") or {}
    step = _step(training)
    try:
        return _tensorboard(report, run, out_dir, step) if tracker == "tensorboard" else _wandb(report, run, step)
    except HarnessError:
        raise
    except Exception as e:  # the verdict stands in the report; the tracker's failure is still the user's to see
        written = f"the report is written ({out_dir}); " if out_dir is not None else ""
        raise HarnessError(
            f"{written}logging the release to {tracker} failed: {type(e).__name__}: {e}",
            where="--log-to",
            fix="check the tracker's set-up (W&B: WANDB_API_KEY, or WANDB_MODE=offline), then re-run: "
            "every measurement comes from the cache",
        ) from e
