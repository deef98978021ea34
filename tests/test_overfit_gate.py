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


def _evals(rows):
    """Evaluation points of this runner's logs: (step, validation loss, train-sample loss)."""
    return [LossPoint(s, None, v, ts) for s, v, ts in rows]


def test_like_with_like_gap_fails_where_the_running_train_loss_hid_it():
    # the demo's shape: the running loss over the mixed training set stays high (1.16) and the validation loss ends
    # below it, so validation - running train loss is negative; on the same kind of rows measured alike it is 0.6
    running = [LossPoint(s, 1.16, None) for s in (10, 20, 30, 40)]
    evals = _evals([(0, 1.6, 1.6), (20, 0.95, 0.5), (40, 0.9, 0.3)])
    r = _decide(sorted(running + evals, key=lambda p: p.step))
    assert r.verdict == "fail" and r.delta == 0.6 and r.baseline == 0.3 and r.candidate == 0.9
    assert r.metric.startswith("validation - train-sample loss")
    assert "train-sample loss 0.300" in r.explanation and "above the train-sample loss (max_gap 0.3)" in r.explanation
    assert "rose" not in r.explanation  # the validation loss itself kept falling
    assert r.details["compared"] == "train_sample"
    assert [g["gap"] for g in r.details["gaps"]] == [0.0, 0.45, 0.6]
    assert "before training (step 0) the gap was +0.000" in r.explanation
    old = _decide(sorted(running + [LossPoint(p.step, None, p.eval_loss) for p in evals], key=lambda p: p.step))
    assert old.verdict == "pass" and old.delta < 0  # the old comparison could not trip


def test_like_with_like_healthy_run_passes_with_per_task_gaps():
    end = LossPoint(20, None, 0.5, 0.43, {"triage": 0.2, "policy": 1.1}, {"triage": 0.19, "policy": 0.8})
    r = _decide([LossPoint(10, 0.9, None), *_evals([(0, 1.7, 1.75), (10, 0.6, 0.5)]), LossPoint(20, 0.8, None), end])
    assert r.verdict == "pass" and r.delta == 0.07 and r.baseline == 0.43
    assert r.details["gap_by_task"]["policy"] == {"valid": 1.1, "train_sample": 0.8, "gap": 0.3}
    assert r.details["gap_by_task"]["triage"]["gap"] == 0.01
    assert "; per task, validation - train sample: policy +0.300, triage +0.010)" in r.explanation


def test_like_with_like_keeps_the_validation_rise_check():
    r = _decide(_evals([(10, 0.50, 0.45), (20, 0.58, 0.40)]), max_gap=1.0)
    assert r.verdict == "fail" and "rose 16.0%" in r.explanation and "max_gap" not in r.explanation.split("Overfit")[1]


def test_old_log_without_train_sample_falls_back_and_says_so():
    r = _decide(_curve([(10, 1.0), (20, 0.6), (30, 0.45), (40, 0.4)], [(0, 1.5), (20, 0.62), (40, 0.5)]))
    assert r.verdict == "pass" and r.details["compared"] == "running_train_loss" and r.details["gaps"] == []
    assert "no train-sample loss" in r.explanation and "not like with like" in r.explanation
    assert "falls back to the earlier rule and its verdict" in r.explanation
    assert r.metric.startswith("validation - running train loss")


def test_reads_train_sample_and_per_task_columns_and_round_trips(tmp_path):
    rows = [
        {"step": 0, "train_loss": None, "eval_loss": 1.5, "train_sample_loss": 1.4},
        {"step": 2, "train_loss": 1.1, "eval_loss": None, "train_sample_loss": None},
        {
            "step": 2,
            "eval_loss": 1.2,
            "train_sample_loss": 0.9,
            "eval_loss/triage": 1.0,
            "train_sample_loss/triage": 0.8,
        },
    ]
    (tmp_path / "train_log.json").write_text(json.dumps(rows))
    log = read_training_log(tmp_path / "train_log.json")
    assert log.points[0] == LossPoint(0, None, 1.5, 1.4)
    assert log.points[2] == LossPoint(2, None, 1.2, 0.9, {"triage": 1.0}, {"triage": 0.8})
    assert TrainingLog.from_dict(json.loads(json.dumps(log.to_dict()))) == log  # the measurement cache's form
    old = TrainingLog.from_dict({"source": "x", "points": [{"step": 1, "train_loss": 0.5, "eval_loss": None}]})
    assert old.points == (LossPoint(1, 0.5, None),)  # cached before the train-sample columns existed


def test_a_trend_from_two_evaluations_says_which_two():
    """Evaluations at steps 0 and 40 only: no two lie in the last 30%, so the trend is the last two, and the
    report names them rather than calling it the last 30% of training."""
    r = _decide(_curve([(10, 1.0), (20, 0.6), (30, 0.45), (40, 0.4)], [(0, 1.5), (40, 0.5)]))
    assert "between its last two evaluations (steps 0 and 40) it moved -2.500 per 100 steps" in r.explanation
    assert "over the last 30%" not in r.explanation
