"""The regression gate's non-inferiority decisions on hand-made measurements (no model)."""

from gates import GateContext, get_gate
from gates.regression import RegressionParams
from probes.results import DocNLL, NLLMeasurement, ProbeOutcome, ProbeRun


def _probes(passed):
    return ProbeRun(
        tuple(
            ProbeOutcome(f"g{i}", f"q{i}", (f"a{i}",), (ok,), (True,), ("" if ok else "wrong",))
            for i, ok in enumerate(passed)
        )
    )


def _text(per_token):
    return NLLMeasurement(tuple(DocNLL(f"t{i}", v * 40, 40, 160, "t") for i, v in enumerate(per_token)), 1024, "all")


def _decide(bp, cp, bt, ct, **kw):
    params = RegressionParams(**kw)
    gdef = get_gate("regression")
    preq, treq = gdef.requests(params)
    m = {(preq, "base"): bp, (preq, "candidate"): cp, (treq, "base"): bt, (treq, "candidate"): ct}
    return gdef.decide(params, GateContext("regression", True, 0, m))


BASE = [True, False, True, True] * 15
TEXT = [2.0 + 0.05 * (i % 7) for i in range(20)]


def test_unchanged_candidate_passes_non_inferiority():
    r = _decide(_probes(BASE), _probes(BASE), _text(TEXT), _text(TEXT))
    assert r.verdict == "pass" and r.delta == 0.0
    assert r.details["perplexity"]["verdict"] == "pass"


def test_forgetting_fails_and_names_the_forgotten_items():
    forgot = [False, False, True, False] * 15
    r = _decide(_probes(BASE), _probes(forgot), _text(TEXT), _text(TEXT))
    assert r.verdict == "fail" and r.ci[1] < -0.05
    assert r.evidence[0].id == "g0" and r.evidence[0].base_score == 1.0 and r.evidence[0].candidate_score == 0.0


def test_perplexity_increase_alone_fails():
    worse = [v + 0.2 for v in TEXT]
    r = _decide(_probes(BASE), _probes(BASE), _text(TEXT), _text(worse))
    assert r.verdict == "fail" and r.details["perplexity"]["verdict"] == "fail"
    assert r.details["perplexity"]["ci"][0] > 0.05


def test_small_noisy_drop_is_inconclusive():
    small = list(BASE)
    small[0] = small[2] = small[4] = False  # 3 of 60 forgotten: 5 points, right at the tolerance
    r = _decide(_probes(BASE), _probes(small), _text(TEXT), _text(TEXT))
    assert r.verdict == "inconclusive"
