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


def test_non_inferiority_with_a_negative_margin():
    base = _run([2, 3, 1, 4] * 10)
    r = _decide(base, base, margin=-0.05)
    assert r.verdict == "pass"


def test_k_above_n_is_refused_in_the_config():
    with pytest.raises(ValueError):
        PassAtKParams(data="p.jsonl", n=2, k=5)
