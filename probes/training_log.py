"""Reading a fine-tune's training log (the loss curve the overfit gate decides on).

Each point is a log row: the running training loss (train mode, over the batches since the last log), or an
evaluation: the validation loss and, from logs of this runner, the loss of a fixed sample of training rows
measured exactly as the validation loss is (`train_sample_loss`), with both per task type where rows carry one
(`eval_loss/<task>`, `train_sample_loss/<task>` columns). Older logs without them still read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, kind, to_dict
from harness.core.training_manifest import TRAINING_MANIFEST, TrainingManifest


@dataclass(frozen=True)
class LossPoint:
    step: int
    train_loss: float | None
    eval_loss: float | None
    train_sample_loss: float | None = None
    eval_by_task: dict[str, float] = field(default_factory=dict)
    train_sample_by_task: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingLog:
    source: str
    points: tuple[LossPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "points": [asdict(p) for p in self.points]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingLog:
        return cls(d["source"], tuple(LossPoint(**p) for p in d["points"]))


def read_training_log(path: Path) -> TrainingLog:
    """`train_log.json` (a list of rows) or a `training_manifest.json` (its `loss_log`)."""
    if path.is_dir():
        path = path / TRAINING_MANIFEST
    if not path.is_file():
        raise HarnessError(
            "no training log found",
            where=str(path),
            fix="train with `harness train` (it writes training_manifest.json beside the adapter), "
            'or set [gates.overfit] log = "path/to/train_log.json"',
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise HarnessError(f"training log is not valid JSON ({e})", where=str(path)) from None
    rows = TrainingManifest.from_dict(data).loss_log if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise HarnessError(
            "training log has no loss rows",
            where=str(path),
            fix='expected a list of {"step", "train_loss", "eval_loss"} rows or a manifest with loss_log',
        )
    points = []
    for r in rows:
        if isinstance(r, dict) and "step" in r:
            points.append(_point(r))
        elif isinstance(r, list) and len(r) == 2:  # (step, loss) pairs of older manifests
            points.append(LossPoint(int(r[0]), float(r[1]), None))
    return TrainingLog(str(path), tuple(points))


def _point(r: dict[str, Any]) -> LossPoint:
    def by_task(column: str) -> dict[str, float]:
        return {k.split("/", 1)[1]: float(v) for k, v in r.items() if k.startswith(f"{column}/") and v is not None}

    return LossPoint(
        int(r["step"]),
        r.get("train_loss"),
        r.get("eval_loss"),
        r.get("train_sample_loss"),
        by_task("eval_loss"),
        by_task("train_sample_loss"),
    )


@kind("training_log", load=TrainingLog.from_dict, dump=to_dict, load_data=None, cached=False)
def _training_log_kind(call: MeasureCall) -> TrainingLog:
    data = call.request.data
    env = call.env  # what ships: the adapter, or a full checkpoint's own directory (its training manifest beside it)
    return read_training_log(Path(data) if data else env.adapter.dir if env.adapter is not None else env.base.dir)
