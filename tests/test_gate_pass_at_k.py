"""The pass_at_k gate's decision on hand-made probe runs (no model)."""

import pytest

from gates import GateContext, get_gate
from gates.pass_at_k import PassAtKParams
from probes.results import ProbeOutcome, ProbeRun


def _run(counts, n=4, parsed=True):
    return ProbeRun(
        tuple(
            ProbeOutcome(
                f"p{i}",
                f"prompt {i}",
                tuple(f"out{j}" for j in range(n)),
                tuple(j < c for j in range(n)),
                tuple([parsed] * n),
                tuple("" if j < c else "wrong" for j in range(n)),
            )
            for i, c in enumerate(counts)
        )
    )


def _decide(base, cand, **kw):
    params = PassAtKParams(data="p.jsonl", n=4, **kw)
    gdef = get_gate("pass_at_k")
    (req,) = gdef.requests(params)
    return gdef.decide(params, GateContext("pass_at_k", True, 0, {(req, "base"): base, (req, "candidate"): cand}))


def test_clear_gain_passes():
    r = _decide(_run([0] * 30, parsed=False), _run([3] * 30))
    assert r.verdict == "pass" and r.baseline == 0.0 and r.candidate == 0.75
    assert r.details["base_format_conformance"] == 0.0 and r.details["candidate_format_conformance"] == 1.0
    assert r.details["candidate_pass^1"] == 0.75


def test_same_behaviour_is_not_passed_and_regressions_are_evidence():
    base = _run([4, 4, 0, 2] * 5)
    assert _decide(base, base).verdict == "fail"
    worse = _run([0, 4, 0, 2] * 5)
    r = _decide(base, worse)
    assert r.verdict == "fail" and r.delta < 0
    assert r.evidence and r.evidence[0].id == "p0" and "base passed 4/4, candidate 0/4" in r.evidence[0].note


def test_mcnemar_on_each_items_first_k_samples_is_reported_not_decisive():
    base = _run([4, 4, 0, 2] * 5)
    cand = _run([0, 4, 0, 2] * 4 + [4, 4, 3, 2])  # 4 items lost (4/4 -> 0/4), 1 gained (0/4 -> 3/4)
    r = _decide(base, cand)
    assert r.details["mcnemar"]["lost"] == 4 and r.details["mcnemar"]["gained"] == 1
    assert r.details["mcnemar"]["p_value"] == 0.375  # 2 * (1 + 5) / 2**5
    assert "first k=1 samples" in r.details["mcnemar"]["per_item"]
    assert "McNemar exact: 4 lost / 1 gained, p = 0.375" in r.explanation
    assert r.verdict == "inconclusive" and r.ci[0] <= 0 < r.ci[1]  # decided by the interval, as before

    def shuffled(counts, first_pass):  # c passes of 4, the first sample passing or not
        passed = [(f, *(j < c - f for j in range(3))) for c, f in zip(counts, first_pass, strict=True)]
        return ProbeRun(
            tuple(ProbeOutcome(f"p{i}", "q", ("o",) * 4, ok, (True,) * 4, ("",) * 4) for i, ok in enumerate(passed))
        )

    # same counts (so the same pass@1 and interval), but only the first sample enters McNemar at k=1
    b, c = shuffled([2] * 10, [True] * 10), shuffled([2] * 10, [False] * 7 + [True] * 3)
    r1 = _decide(b, c)
    m1 = r1.details["mcnemar"]
    assert r1.delta == 0 and (m1["lost"], m1["gained"], m1["p_value"]) == (7, 0, 0.015625)  # p = 2 / 2**7
    r2 = _decide(b, c, k=2)  # any of the first two: every item passes for both
    assert r2.details["mcnemar"]["lost"] == r2.details["mcnemar"]["gained"] == 0
    assert r2.details["mcnemar"]["p_value"] == 1.0


def test_non_inferiority_with_a_negative_margin():
    base = _run([2, 3, 1, 4] * 10)
    r = _decide(base, base, margin=-0.05)
    assert r.verdict == "pass"


def test_k_above_n_is_refused_in_the_config():
    with pytest.raises(ValueError):
        PassAtKParams(data="p.jsonl", n=2, k=5)
