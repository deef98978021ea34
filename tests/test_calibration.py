"""The calibration gate: Brier score, equal-mass ECE and the reliability diagram of each variant, decided by paired
non-inferiority of the per-item Brier score. Truths known by construction: an identical candidate passes; the real
model made overconfident on purpose (its final norm scaled up: every answer the same, every confidence higher)
fails while its accuracy is unchanged; rows without a label or with an answer outside the options are refused,
naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gates import get_gate
from gates.calibration import CalibrationParams, ece, equal_mass_bins
from gates.registry import GateContext
from harness.core.errors import HarnessError
from probes.results import ChoiceItem, ChoiceRun
from tests.helpers import make_adapter, write_jsonl

REPO = Path(__file__).resolve().parent.parent
TRIAGE = REPO / "probes" / "data" / "triage_eval.jsonl"
SEVERITY = 'label = "severity"\noptions = ["critical", "high", "medium", "low"]\nanswer_prefix = \'{"severity": "\'\n'


def _decide(base: ChoiceRun, cand: ChoiceRun, **params):
    p = CalibrationParams(data="items.jsonl", **params)
    req = get_gate("calibration").requests(p)[0]
    ctx = GateContext("calibration", True, 0, {(req, "base"): base, (req, "candidate"): cand})
    return get_gate("calibration").decide(p, ctx)


def _run(logits: np.ndarray, answers: np.ndarray) -> ChoiceRun:
    opts = tuple(f"o{k}" for k in range(logits.shape[1]))
    return ChoiceRun(
        tuple(
            ChoiceItem(f"i{j}", f"q{j}", opts, tuple(map(float, row)), int(a))
            for j, (row, a) in enumerate(zip(logits, answers, strict=True))
        )
    )


def test_ece_and_bins_on_numbers_worked_by_hand():
    conf = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([1.0, 0.0, 1.0, 1.0])
    bins = equal_mass_bins(conf, correct, 2)
    assert [b["items"] for b in bins] == [2, 2]
    assert bins[0]["confidence"] == pytest.approx(0.6) and bins[0]["accuracy"] == 1.0
    assert bins[1]["confidence"] == pytest.approx(0.9) and bins[1]["accuracy"] == 0.5
    assert ece(conf, correct, 2) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert ece(np.array([0.7] * 10), np.array([1.0] * 7 + [0.0] * 3), 5) == pytest.approx(0.0)


def test_identical_candidate_passes_and_a_sharpened_one_fails_with_the_same_accuracy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    answers = np.array([rng.choice(4, p=p) for p in probs])  # drawn from the base's own probabilities: calibrated
    same = _decide(_run(logits, answers), _run(logits, answers))
    assert same.verdict == "pass" and same.delta == 0 and same.ci == (0.0, 0.0)

    sharp = _decide(_run(logits, answers), _run(logits * 6, answers))
    assert sharp.verdict == "fail", sharp.explanation
    assert sharp.details["base"]["accuracy"] == sharp.details["candidate"]["accuracy"]
    assert sharp.details["candidate"]["ece"] > sharp.details["base"]["ece"]
    assert sharp.ci[0] > 0.05
    # the evidence is the candidate's most confident wrong answers, most confident first
    assert sharp.evidence and all("right:" in e.note for e in sharp.evidence)
    confs = [float(e.candidate_output.rsplit("(", 1)[1].rstrip("%)")) for e in sharp.evidence]
    assert confs == sorted(confs, reverse=True)
    tables = {t.title.split(" (")[0]: t for t in sharp.tables}
    assert len(tables["Reliability diagram"].rows) == 20  # 10 bins per variant

    # a better-calibrated candidate (the sharpened one as base) passes
    assert _decide(_run(logits * 6, answers), _run(logits, answers)).verdict == "pass"


def test_max_ece_fails_a_candidate_that_is_confidently_wrong():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(300, 4))
    answers = rng.integers(0, 4, 300)  # right 1 time in 4
    r = _decide(_run(logits * 8, answers), _run(logits * 8, answers), max_ece=0.1)
    assert r.delta == 0 and r.verdict == "fail", r.explanation  # Brier unchanged, but ECE far above the ceiling
    assert r.details["ece_interval"][0] > 0.1
    assert "max_ece" in r.explanation


def test_rows_without_the_label_or_with_an_unknown_answer_are_refused_naming_the_line(tmp_path):
    from harness.core.data import load_dataset
    from probes.choices import questions

    rows = [
        {"id": "a", "prompt": "Severity?", "completion": "x", "severity": "high"},
        {"id": "b", "prompt": "?", "completion": "x"},
    ]
    ds = load_dataset(str(write_jsonl(tmp_path / "items.jsonl", rows)))
    with pytest.raises(HarnessError) as e:
        questions(ds, "severity", ["high", "low"])
    assert "items.jsonl:2" in str(e.value) and "severity" in str(e.value)
    rows[1]["severity"] = "urgent"
    ds = load_dataset(str(write_jsonl(tmp_path / "items2.jsonl", rows)))
    with pytest.raises(HarnessError) as e:
        questions(ds, "severity", ["high", "low"])
    assert "items2.jsonl:2" in str(e.value) and "urgent" in str(e.value)
    # options default to the values the label takes; a row's own choices win
    assert questions(ds, "severity", [])[0].options == ("high", "urgent")
    mc = load_dataset(str(write_jsonl(tmp_path / "mc.jsonl", [{"text": "2+2=", "choices": ["3", "4"], "answer": 1}])))
    (q,) = questions(mc, "answer", [])
    assert q.options == ("3", "4") and q.answer == 1


def test_config_needs_exactly_one_of_data_and_task():
    with pytest.raises(ValueError):
        CalibrationParams()
    with pytest.raises(ValueError):
        CalibrationParams(data="x.jsonl", task="arc_easy")


def _config(path: Path, base: Path, adapter: Path, cache: Path) -> Path:
    path.write_text(
        f'[model]\nbase = "{base}"\nadapter = "{adapter}"\n\n[run]\ncache_dir = "{cache}"\n\n'
        f'[gates.calibration]\ndata = "{TRIAGE}"\n{SEVERITY}'
    )
    return path


@pytest.mark.slow
def test_the_real_model_made_overconfident_fails_calibration_with_its_accuracy_unchanged(tmp_path, embedded_base):
    """SmolLM2-135M on the demo's 40 held-out triage reports, severity as four options. An adapter that scales
    the final norm by 3 changes no answer (each option is one token after the same prefix, and scaling logits keeps
    their order) but raises every confidence: the Brier score rises far past 0.02 and the gate fails. The identical
    (zero) adapter passes with a change of exactly 0."""
    from harness.pipeline import run

    cache = tmp_path / "cache"
    sharp = make_adapter(embedded_base, tmp_path / "sharp", "overconfident", scale=3.0)
    zero = make_adapter(embedded_base, tmp_path / "zero", "zero")
    r = run(_config(tmp_path / "sharp.toml", embedded_base.dir, sharp, cache), tmp_path / "out-sharp")
    g = r.report.gates[0]
    assert g.name == "calibration" and g.verdict == "fail", g.explanation
    d = g.details
    assert d["items"] == 40 and d["base"]["accuracy"] == d["candidate"]["accuracy"]
    assert d["candidate"]["mean_confidence"] > d["base"]["mean_confidence"]
    assert g.ci[0] > 0.02
    md = (tmp_path / "out-sharp" / "report.md").read_text()
    assert "Reliability diagram" in md and "calibration.png" in md
    assert (tmp_path / "out-sharp" / "calibration.png").read_bytes()[:4] == b"\x89PNG"

    ok = run(_config(tmp_path / "zero.toml", embedded_base.dir, zero, cache), tmp_path / "out-zero")
    z = ok.report.gates[0]
    assert z.verdict == "pass" and z.delta == 0, z.explanation
    assert z.baseline == g.baseline  # the base measured once, from the cache the second time
    saved = json.loads((tmp_path / "out-zero" / "report.json").read_text())
    assert saved["manifest"]["cache"]["hits"] >= 1
