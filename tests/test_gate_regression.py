"""The regression gate's non-inferiority decisions on hand-made measurements (no model): the three
per-item scores, McNemar beside greedy pass/fail, sequential looks and the power estimate."""

from dataclasses import replace

import numpy as np
import pytest

from gates import GateContext, get_gate
from gates.regression import RegressionParams
from gates.stats import look_levels, look_sizes, mcnemar_exact
from harness.pipeline import power_warnings
from probes.results import DocNLL, NLLMeasurement, ProbeOutcome, ProbeRun


def _probes(passed, start=0):
    return ProbeRun(
        tuple(
            ProbeOutcome(f"g{start + i}", f"q{i}", (f"a{i}",), (ok,), (True,), ("" if ok else "wrong",))
            for i, ok in enumerate(passed)
        )
    )


def _refs(probs, start=0):
    """Reference-answer NLLs (3 tokens each) whose per-token probabilities are `probs` (the likelihood score)."""
    return NLLMeasurement(
        tuple(DocNLL(f"g{start + i}", float(-3 * np.log(p)), 3, 6, f"q{i} | ref") for i, p in enumerate(probs)),
        1024,
        "c",
    )


def _text(per_token):
    return NLLMeasurement(tuple(DocNLL(f"t{i}", v * 40, 40, 160, "t") for i, v in enumerate(per_token)), 1024, "all")


def _decide(b, c, bt, ct, *, look=0, looks=(), **kw):
    params = RegressionParams(**kw)
    gdef = get_gate("regression")
    first = b[0] if isinstance(b, list) else b
    n = looks[look] if looks else len(getattr(first, "docs", None) or first.items)
    reqs = gdef.sequential.requests(params, n)
    treqs = [r for r in reqs if r.data == params.text]
    sreqs = [r for r in reqs if r not in treqs]
    bs, cs = (b, c) if isinstance(b, list) else ([b], [c])
    m = {}
    for r in treqs:  # the text's slices (`text_items` paragraphs a look), cut from the whole text given
        a, z = r.opts.get("items", (0, len(bt.docs)))
        m[(r, "base")], m[(r, "candidate")] = (replace(t, docs=t.docs[a:z]) for t in (bt, ct))
    for r, mb, mc in zip(sreqs, bs, cs, strict=True):
        m[(r, "base")], m[(r, "candidate")] = mb, mc
    return gdef.decide(params, GateContext("regression", True, 0, m, tuple(reqs), looks=looks, look=look))


BASE = [True, False, True, True] * 15
TEXT = [2.0 + 0.05 * (i % 7) for i in range(20)]
rng = np.random.default_rng(0)
PROBS = rng.uniform(0.05, 0.95, 400)


def test_defaults_are_greedy_with_sequential_looks():
    p = RegressionParams()
    assert (p.score, p.items, p.max_items) == ("greedy", 100, 400)


def test_unchanged_candidate_passes_non_inferiority():
    r = _decide(_probes(BASE), _probes(BASE), _text(TEXT), _text(TEXT), score="greedy")
    assert r.verdict == "pass" and r.delta == 0.0
    assert r.details["perplexity"]["verdict"] == "pass"
    assert r.details["mcnemar"] == {"lost": 0, "gained": 0, "p_value": 1.0}


def test_forgetting_fails_and_names_the_forgotten_items():
    forgot = [False, False, True, False] * 15
    r = _decide(_probes(BASE), _probes(forgot), _text(TEXT), _text(TEXT), score="greedy")
    assert r.verdict == "fail" and r.ci[1] < -0.05
    assert r.evidence[0].id == "g0" and r.evidence[0].base_score == 1.0 and r.evidence[0].candidate_score == 0.0
    assert r.details["mcnemar"]["lost"] == 30 and r.details["mcnemar"]["p_value"] < 1e-8
    assert "McNemar exact: 30 lost / 0 gained" in r.explanation


def test_perplexity_increase_alone_fails():
    worse = [v + 0.2 for v in TEXT]
    r = _decide(_probes(BASE), _probes(BASE), _text(TEXT), _text(worse), score="greedy")
    assert r.verdict == "fail" and r.details["perplexity"]["verdict"] == "fail"
    assert r.details["perplexity"]["ci"][0] > 0.05


def test_small_noisy_greedy_drop_is_inconclusive():
    small = list(BASE)
    small[0] = small[2] = small[4] = False  # 3 of 60 forgotten: 5 points, right at the tolerance
    r = _decide(_probes(BASE), _probes(small), _text(TEXT), _text(TEXT), score="greedy")
    assert r.verdict == "inconclusive"


def test_likelihood_score_passes_a_small_change_that_greedy_cannot_resolve():
    """A 1-point average drop of the reference answer's probability, spread thinly: decided with room."""
    cand = np.clip(PROBS - 0.01 + rng.normal(0, 0.02, len(PROBS)), 1e-6, 1)
    r = _decide(_refs(PROBS), _refs(cand), _text(TEXT), _text(TEXT), score="likelihood", items=0)
    assert r.verdict == "pass", r.explanation
    assert -0.02 < r.ci[0] < r.delta < r.ci[1] < 0.0
    assert r.metric.startswith("general per-token probability of the reference answer")
    assert r.baseline == pytest.approx(PROBS.mean(), abs=1e-6)


def test_likelihood_score_fails_forgetting_and_shows_the_worst_items():
    cand = PROBS * 0.5
    r = _decide(_refs(PROBS), _refs(cand), _text(TEXT), _text(TEXT), score="likelihood", items=0)
    assert r.verdict == "fail" and r.ci[1] < -0.05
    worst = int(np.argmax(PROBS))
    assert r.evidence[0].id == f"g{worst}" and r.evidence[0].base_score == pytest.approx(PROBS[worst], abs=1e-4)


def test_samples_score_uses_per_item_pass_rates():
    def run(c):
        return ProbeRun(
            tuple(ProbeOutcome(f"g{i}", "q", ("a",) * 4, k, (True,) * 4, ("",) * 4) for i, k in enumerate(c))
        )

    b = [(True, True, False, False)] * 50
    c = [(True, False, False, False)] * 50
    r = _decide(run(b), run(c), _text(TEXT), _text(TEXT), score="samples")
    assert r.baseline == 0.5 and r.candidate == 0.25 and r.verdict == "fail"
    assert "mcnemar" not in r.details


def test_sequential_looks_measure_new_slices_and_spend_alpha():
    looks = look_sizes(100, 400, 400)
    assert looks == (100, 200, 300, 400)
    levels = look_levels(looks, 0.95)
    assert sum(1 - lv for lv in levels) == pytest.approx(0.05)
    assert levels[0] > 0.999 and levels[-1] < levels[0]  # O'Brien-Fleming: little alpha early
    gdef = get_gate("regression")
    reqs = gdef.sequential.requests(RegressionParams(score="likelihood", items=100, max_items=400), 200)
    suite = [r.opts["items"] for r in reqs if r.data == "builtin:general"]
    text = [r.opts["items"] for r in reqs if r.data == "builtin:general_text"]
    assert suite == [(0, 100), (100, 200)] and text == [(0, 60), (60, 120)]  # the text grows with the looks too
    cand = np.clip(PROBS - 0.02, 1e-6, 1)
    b = [_refs(PROBS[a:z], a) for a, z in ((0, 100), (100, 200))]
    c = [_refs(cand[a:z], a) for a, z in ((0, 100), (100, 200))]
    r = _decide(b, c, _text(TEXT), _text(TEXT), look=1, looks=looks, score="likelihood", items=100, max_items=400)
    assert r.details["items"] == 200 and r.details["sequential"]["look"] == 2
    assert r.details["sequential"]["level"] == pytest.approx(levels[1])
    assert "Look 2 of 4" in r.explanation


def test_power_from_prior_base_and_paired_measurements():
    gdef = get_gate("regression")
    p = RegressionParams(score="likelihood", items=0, max_items=0)
    reqs = tuple(gdef.sequential.requests(p, 400))
    prior = gdef.power(p, GateContext("regression", True, 0, {}, reqs, looks=(400,)))
    assert prior[0].sd_source == "prior" and prior[0].items == 400
    assert prior[0].half_width == pytest.approx(1.96 * 0.15 / 20, rel=1e-3)  # the stated likelihood prior
    greedy = gdef.power(RegressionParams(score="greedy"), GateContext("regression", True, 0, {}, (), looks=(400,)))
    assert greedy[0].half_width == pytest.approx(1.96 * 0.5**0.5 / 20, rel=1e-3)  # a rate's worst case
    assert greedy[0].upper_bound and not prior[0].upper_bound  # said so in the warning and the report
    (w,) = [w for w in power_warnings({"regression": greedy}) if "pass rate" in w]
    assert "an upper bound: as if the candidate answered independently of the base" in w
    m = {(reqs[0], "base"): _refs(PROBS)}
    from_base = gdef.power(p, GateContext("regression", True, 0, m, reqs, looks=(400,)))
    assert from_base[0].sd_source == "base" and from_base[0].sd == pytest.approx(PROBS.std(ddof=1) * 2**0.5)
    m[(reqs[0], "candidate")] = _refs(np.clip(PROBS + rng.normal(0, 0.01, 400), 1e-6, 1))
    paired = gdef.power(p, GateContext("regression", True, 0, m, reqs, looks=(400,)))
    assert paired[0].sd_source == "paired" and paired[0].half_width < 0.002 and paired[0].resolves


def test_mcnemar_exact_matches_the_binomial_tail():
    t = mcnemar_exact(np.array([1, 1, 1, 1, 0, 0]), np.array([0, 0, 0, 0, 0, 1]))
    assert (t.lost, t.gained) == (4, 1) and t.p_value == pytest.approx(2 * 6 / 32)
    assert mcnemar_exact(np.array([1, 0]), np.array([1, 0])).p_value == 1.0


def test_bad_score_names_the_key():
    with pytest.raises(ValueError, match="score"):
        RegressionParams(score="vibes")
