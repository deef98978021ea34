"""The preference gate: decisions on hand-made measurements (superiority at `min_gain` >= 0, non-inferiority below
0, `normalize`, evidence, looks, power), the measurement against a hand computation on the tiny model, one run
through the pipeline, and a bad pairs file refused by `harness gate` naming its line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gates import GateContext, get_gate
from gates.preference import PreferenceParams
from gates.stats import look_levels
from harness.cli import main
from probes.results import PairScore, PreferenceRun
from tests.helpers import write_jsonl

rng = np.random.default_rng(0)


def _run(margins, n_chosen=None, n_rejected=None, start=0) -> PreferenceRun:
    """Pairs whose summed margin (chosen - rejected) is each of `margins`."""
    k = len(margins)
    nc = n_chosen if n_chosen is not None else [5] * k
    nr = n_rejected if n_rejected is not None else [5] * k
    return PreferenceRun(
        tuple(
            PairScore(f"p{start + i}", f"q{i}", f"good {i}", f"bad {i}", -10.0 + m, -10.0, nc[i], nr[i])
            for i, m in enumerate(margins)
        ),
        "<|im_end|>",
    )


def _decide(base, cand, *, look=0, looks=(), **kw):
    p = PreferenceParams(data="pairs.jsonl", **kw)
    gdef = get_gate("preference")
    bs, cs = (base, cand) if isinstance(base, list) else ([base], [cand])
    n = looks[look] if looks else sum(len(b.pairs) for b in bs)
    reqs = gdef.sequential.requests(p, n) if p.items else gdef.requests(p)
    m = {}
    for r, b, c in zip(reqs, bs, cs, strict=True):
        m[(r, "base")], m[(r, "candidate")] = b, c
    return gdef.decide(p, GateContext("preference", True, 0, m, tuple(reqs), looks=looks, look=look))


BASE = rng.normal(0.2, 1.0, 300)  # right on about 58% of the pairs


def test_a_candidate_that_gets_more_pairs_right_passes_min_gain_0():
    better = np.where(BASE < 0, -BASE * (rng.uniform(size=300) < 0.5), BASE) + 0.01  # fixes about half it got wrong
    r = _decide(_run(BASE), _run(better))
    assert r.verdict == "pass", r.explanation
    assert r.candidate > r.baseline and r.ci[0] > 0 and r.threshold == 0.0
    assert r.details["mcnemar"]["lost"] == 0 and r.details["mcnemar"]["gained"] > 30
    assert r.details["margin"]["change"] > 0 and r.details["test"] == "superiority"
    assert "summed log-probability of the answer's tokens, its end-of-turn <|im_end|> included" in r.explanation
    assert "vs base" in r.explanation and "McNemar exact" in r.explanation
    assert not r.evidence  # nothing lost
    assert r.tables[1].rows[0][2] == "0"  # base right, candidate wrong


@pytest.mark.parametrize("min_gain", [0.0, 0.01, 0.05])
def test_an_identical_candidate_never_passes_a_required_gain(min_gain):
    r = _decide(_run(BASE), _run(BASE), min_gain=min_gain)
    assert r.verdict in ("fail", "inconclusive") and r.delta == 0 and r.ci == (0.0, 0.0), r.explanation
    assert r.details["mcnemar"]["p_value"] == 1.0
    # the same candidate is non-inferior within any tolerated drop
    assert _decide(_run(BASE), _run(BASE), min_gain=-0.02).verdict == "pass"


def test_a_much_worse_candidate_fails_and_shows_the_pairs_it_lost():
    worse = np.where(rng.uniform(size=300) < 0.4, -np.abs(BASE) - 0.5, BASE)
    r = _decide(_run(BASE), _run(worse), min_gain=-0.05, evidence=3)
    assert r.verdict == "fail" and r.ci[1] < -0.05, r.explanation
    assert r.details["test"] == "non-inferiority" and "tolerated drop 5.0%" in r.explanation
    lost = r.details["lost_pairs"]
    assert lost > 3 and len(r.evidence) == 3
    assert f"{lost} pair(s) the base got right and the candidate got wrong" in r.explanation
    assert f"{lost - 3} more beyond them" in r.explanation
    scores = [e.candidate_score for e in r.evidence]
    assert scores == sorted(scores) and all(s < 0 for s in scores)  # the candidate's most confident mistakes first
    assert all(e.base_score > 0 and "chosen: good" in e.note and "rejected: bad" in e.note for e in r.evidence)
    assert _decide(_run(BASE), _run(worse), min_gain=0.0).verdict == "fail"
    # the word for the compared model comes from the context
    p = PreferenceParams(data="pairs.jsonl")
    (req,) = get_gate("preference").requests(p)
    ctx = GateContext("preference", True, 0, {(req, "base"): _run(BASE), (req, "candidate"): _run(worse)})
    ctx = GateContext(**{**ctx.__dict__, "reference": "reference"})
    assert "vs reference" in get_gate("preference").decide(p, ctx).explanation


def test_normalize_tokens_scores_per_answer_token():
    # chosen: -10 over 20 tokens (-0.5 a token); rejected: -6 over 4 tokens (-1.5 a token)
    run = PreferenceRun((PairScore("p39", "q", "long good answer", "bad", -10.0, -6.0, 20, 4),))
    assert run.pairs[0].score("sum") == (-10.0, -6.0) and run.pairs[0].score("tokens") == (-0.5, -1.5)
    base = _run([1.0] * 40)
    summed = _decide(base, PreferenceRun(base.pairs[:39] + run.pairs))
    per_token = _decide(base, PreferenceRun(base.pairs[:39] + run.pairs), normalize="tokens")
    assert summed.candidate == pytest.approx(39 / 40) and per_token.candidate == 1.0
    assert summed.details["lost_pairs"] == 1 and per_token.details["lost_pairs"] == 0
    assert 'mean log-probability per answer token (normalize = "tokens")' in per_token.explanation
    assert per_token.details["margin"]["unit"] == "nats per token"


def test_sequential_looks_measure_new_slices_and_spend_alpha():
    p = PreferenceParams(data="pairs.jsonl", items=100, max_items=300)
    gdef = get_gate("preference")
    assert gdef.sequential.data(p) == ("preference", "pairs.jsonl")
    assert gdef.sequential.data(PreferenceParams(data="pairs.jsonl")) is None  # items = 0: one look, every pair
    assert gdef.sequential.looks(p, 250) == (100, 200, 250)
    reqs = gdef.sequential.requests(p, 200)
    assert [r.opts["pairs"] for r in reqs] == [(0, 100), (100, 200)]
    b = [_run(BASE[a:z], start=a) for a, z in ((0, 100), (100, 200))]
    c = [_run(BASE[a:z] + 0.3, start=a) for a, z in ((0, 100), (100, 200))]
    looks = (100, 200, 300)
    r = _decide(b, c, look=1, looks=looks, items=100, max_items=300, min_gain=0.0)
    assert r.details["items"] == 200 and r.details["sequential"]["look"] == 2
    assert r.details["sequential"]["level"] == pytest.approx(look_levels(looks, 0.95)[1])
    assert "Look 2 of 3" in r.explanation


def test_power_from_prior_reference_and_paired_measurements():
    gdef = get_gate("preference")
    p = PreferenceParams(data="pairs.jsonl", min_gain=-0.05)
    (req,) = gdef.requests(p)
    prior = gdef.power(p, GateContext("preference", True, 0, {}, (req,), sizes={"pairs.jsonl": 400}))
    assert prior[0].sd_source == "prior" and prior[0].items == 400 and prior[0].tolerance == 0.05
    base = gdef.power(p, GateContext("preference", True, 0, {(req, "base"): _run(BASE)}, (req,)))
    assert base[0].sd_source == "base" and base[0].items == 300 and base[0].upper_bound
    m = {(req, "base"): _run(BASE), (req, "candidate"): _run(BASE)}
    both = gdef.power(p, GateContext("preference", True, 0, m, (req,)))
    assert both[0].sd_source == "paired" and both[0].sd == 0 and both[0].resolves
    sup = gdef.power(PreferenceParams(data="pairs.jsonl"), GateContext("preference", True, 0, m, (req,)))
    assert sup[0].tolerance is None


def test_params_are_checked_and_results_round_trip():
    with pytest.raises(ValueError, match="normalize"):
        PreferenceParams(data="x.jsonl", normalize="mean")
    with pytest.raises(ValueError, match="min_gain"):
        PreferenceParams(data="x.jsonl", min_gain=1.5)
    run = _run([0.5, -0.5])
    assert PreferenceRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    assert [x.id for x in run.without({"p0"}).pairs] == ["p1"]


PAIRS = [
    {"id": "fr", "prompt": "Capital of France?", "chosen": "Paris.", "rejected": "It is Lyon, I think."},
    {
        "id": "sum",
        "messages": [{"role": "system", "content": "Answer with a number."}, {"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    },
    {
        "chosen": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}],
        "rejected": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "No."}],
    },
]


def test_each_answer_is_scored_as_the_template_renders_it_with_its_end_of_turn(tiny_base, tmp_path):
    """Parity: the scored sequence is the chat template's rendering of the whole conversation up to and including
    the assistant turn's <|im_end|>, and the score is the sum of those answer tokens' log-probabilities computed by
    hand from the model's logits."""
    from harness.core.models import load_base_model, load_tokenizer
    from harness.core.pairs import load_pairs
    from harness.core.runtime import HFRuntime
    from probes.preference import encode_pair, end_of_turn, score_pairs

    rt = HFRuntime(load_base_model(tiny_base), load_tokenizer(tiny_base.dir))
    tok = rt.tok
    pairs = load_pairs(write_jsonl(tmp_path / "pairs.jsonl", PAIRS)).pairs
    marker, eot = end_of_turn(tok)
    assert marker == "<|im_end|>"
    run = score_pairs(rt, pairs, batch_size=2)
    assert run.end_of_turn == "<|im_end|>" and [s.id for s in run.pairs] == ["fr", "sum", "line-3"]
    for pair, s in zip(pairs, run.pairs, strict=True):
        ids, _, n, _ = encode_pair(tok, pair, eot)
        full = tok.apply_chat_template([*pair.prompt, {"role": "assistant", "content": pair.chosen}], tokenize=False)
        rendered = tok(full, add_special_tokens=False)["input_ids"]
        assert ids == rendered[: len(ids)] and ids[-1] == eot
        assert n == len(tok(pair.chosen, add_special_tokens=False)["input_ids"]) + 1 == s.n_chosen
        logp = rt.logits(ids).double().log_softmax(-1)
        by_hand = sum(float(logp[i - 1, ids[i]]) for i in range(len(ids) - n, len(ids)))
        assert s.ll_chosen == pytest.approx(by_hand, abs=1e-4)
        assert s.ll_rejected < 0 and s.n_rejected >= 2


def _config(tmp_path: Path, base: Path, adapter: Path, data: Path, extra: str = "") -> Path:
    path = tmp_path / "release.toml"
    path.write_text(
        f'[model]\nbase = "{base}"\nadapter = "{adapter}"\n\n[run]\ncache_dir = "{tmp_path / "cache"}"\n\n'
        f'[gates.preference]\ndata = "{data}"\n{extra}'
    )
    return path


def test_an_identical_candidate_does_not_pass_a_required_gain_through_the_pipeline(
    tmp_path, tiny_base, tiny_zero_adapter
):
    from harness.pipeline import run

    data = write_jsonl(tmp_path / "pairs.jsonl", [{**r, "id": f"{i}"} for i, r in enumerate(PAIRS * 4)])
    result = run(_config(tmp_path, tiny_base.dir, tiny_zero_adapter, data, "min_gain = 0.05\n"), tmp_path / "out")
    (g,) = result.report.gates
    assert g.name == "preference" and g.verdict == "fail", g.explanation
    assert g.delta == 0 and g.ci == (0.0, 0.0) and g.baseline == g.candidate and g.details["items"] == 12
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "fail" and report["gates"][0]["threshold"] == 0.05
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Preference accuracy of each variant" in md and "`preference`" in md


def test_an_undecided_gate_looks_again_on_new_slices_through_the_pipeline(tmp_path, tiny_base, tiny_damage_adapter):
    from harness.pipeline import run

    data = write_jsonl(tmp_path / "pairs.jsonl", [{**r, "id": f"{i}"} for i, r in enumerate(PAIRS * 10)])
    extra = "items = 6\nmax_items = 18\nmin_gain = -0.3\n"
    result = run(_config(tmp_path, tiny_base.dir, tiny_damage_adapter, data, extra), tmp_path / "out")
    (g,) = result.report.gates
    seq = g.details["sequential"]
    assert seq["looks"] == [6, 12, 18] and g.details["items"] == 6 * seq["look"], g.explanation
    assert g.verdict != "inconclusive" or seq["look"] == 3  # it stops looking only when decided or out of pairs
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["manifest"]["cache"]["misses"] == 2 * seq["look"]  # each look scores only its new slice
    (power,) = g.details["power"]
    assert power["items"] == 18 and power["sd_source"] == "paired"


def test_a_bad_pairs_file_exits_2_naming_the_line(tmp_path, tiny_base, tiny_zero_adapter, capsys):
    bad = write_jsonl(tmp_path / "pairs.jsonl", [PAIRS[0], {"prompt": "q", "chosen": "a"}])
    cfg = _config(tmp_path, tiny_base.dir, tiny_zero_adapter, bad)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{bad}:2" in err and "no 'rejected' field" in err and "fix:" in err
    assert not (tmp_path / "out").exists()
