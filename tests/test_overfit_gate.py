"""The overfit gate's decision, on hand-made training logs (no model)."""

import json

from gates import GateContext, get_gate
from gates.overfit import OverfitParams
from probes.training_log import LossPoint, TrainingLog, read_training_log


def _decide(points, **kw):
    params = OverfitParams(**kw)
    gdef = get_gate("overfit")
    (req,) = gdef.requests(params)
    ctx = GateContext("overfit", True, 0, {(req, "candidate"): TrainingLog("log.json", tuple(points))})
    return gdef.decide(params, ctx)


def _curve(train, evals):
    pts = [LossPoint(s, v, None) for s, v in train] + [LossPoint(s, None, v) for s, v in evals]
    return sorted(pts, key=lambda p: p.step)


def test_healthy_run_passes():
    r = _decide(_curve([(10, 1.0), (20, 0.6), (30, 0.45), (40, 0.4)], [(0, 1.5), (20, 0.62), (40, 0.5)]))
    assert r.verdict == "pass"
    assert r.delta == round(0.5 - (0.6 + 0.45 + 0.4) / 3, 6)


def test_memorising_run_fails_on_the_gap_and_the_rise():
    r = _decide(_curve([(10, 0.8), (20, 0.2), (30, 0.02), (40, 0.01)], [(0, 1.5), (10, 0.9), (20, 1.1), (40, 1.6)]))
    assert r.verdict == "fail"
    assert "max_gap" in r.explanation and "rose" in r.explanation and "step 10" in r.explanation
    assert r.details["val_min_step"] == 10 and r.details["tail_slope_per_100_steps"] > 0


def test_rise_alone_fails():
    r = _decide(_curve([(10, 0.5), (20, 0.5)], [(10, 0.50), (20, 0.58)]), max_gap=1.0)
    assert r.verdict == "fail" and "rose 16.0%" in r.explanation


def test_no_validation_loss_is_skip_which_blocks():
    r = _decide(_curve([(10, 0.5), (20, 0.4)], []))
    assert r.verdict == "skip" and r.blocks


def test_reads_both_log_formats(tmp_path):
    rows = [{"step": 5, "train_loss": 1.0, "eval_loss": None}, {"step": 5, "train_loss": None, "eval_loss": 1.2}]
    (tmp_path / "train_log.json").write_text(json.dumps(rows))
    (tmp_path / "training_manifest.json").write_text(json.dumps({"loss_log": rows}))
    a = read_training_log(tmp_path / "train_log.json")
    b = read_training_log(tmp_path)  # an adapter directory: its training_manifest.json
    assert a.points == b.points == (LossPoint(5, 1.0, None), LossPoint(5, None, 1.2))
