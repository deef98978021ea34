"""The perplexity gate's decision, on hand-made measurements (no model)."""

import math

import pytest

from gates import GateContext, MeasureRequest, get_gate
from gates.perplexity import PerplexityParams
from probes.results import DocNLL, NLLMeasurement


def _meas(per_token_nll: list[float], tokens: int = 50) -> NLLMeasurement:
    docs = tuple(DocNLL(f"d{i}", v * tokens, tokens, tokens * 4, f"doc {i}") for i, v in enumerate(per_token_nll))
    return NLLMeasurement(docs, max_length=1024, scored="all")


def _decide(base, cand, **kw):
    params = PerplexityParams(data="x.jsonl", **kw)
    gdef = get_gate("perplexity")
    (req,) = gdef.requests(params)
    assert req == MeasureRequest("nll", "x.jsonl", (("max_length", 1024), ("batch_size", 8)))
    ctx = GateContext("perplexity", True, 0, {(req, "base"): base, (req, "candidate"): cand})
    return gdef.decide(params, ctx)


def test_clear_improvement_passes_with_ci():
    base = _meas([2.0 + 0.1 * (i % 5) for i in range(30)])
    cand = _meas([1.5 + 0.1 * (i % 5) for i in range(30)])
    r = _decide(base, cand, min_relative_improvement=0.05)
    assert r.verdict == "pass"
    assert r.ci[0] > 0.05 and r.ci[0] <= r.delta <= r.ci[1]
    assert r.baseline == round(math.exp(base.total_nll / base.total_tokens), 6)
    assert "lower bound clears" in r.explanation


def test_identical_candidate_is_not_passed():
    base = _meas([2.0 + 0.1 * (i % 5) for i in range(30)])
    r = _decide(base, base, min_relative_improvement=0.0)
    assert r.verdict == "fail"
    assert r.ci == (0.0, 0.0) and r.delta == 0.0


def test_worse_candidate_fails_and_evidence_shows_worst_documents():
    base = _meas([2.0] * 20)
    cand = _meas([2.1] * 19 + [4.0])
    r = _decide(base, cand)
    assert r.verdict == "fail" and r.delta < 0
    assert r.evidence[0].id == "d19"
    assert r.evidence[0].candidate_score > r.evidence[0].base_score


def test_noisy_small_gain_is_inconclusive_and_says_how_many_more():
    base = _meas([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    cand = _meas([1.5, 2.3, 1.6, 2.2, 1.7, 2.1])
    r = _decide(base, cand, min_relative_improvement=0.02)
    assert r.verdict == "inconclusive"
    assert r.details["more_items_to_decide"] > 0
    assert "more documents" in r.explanation


def test_different_tokenizers_compare_per_byte():
    base = _meas([2.0] * 10, tokens=50)
    docs = tuple(DocNLL(d.id, d.nll * 0.8, 40, d.bytes, d.preview) for d in base.docs)
    r = _decide(base, NLLMeasurement(docs, 1024, "all"))
    assert r.details["unit"] == "byte"
    assert r.delta == pytest.approx(1 - math.exp(0.4 - 0.5), abs=1e-6)  # per-byte NLL 0.5 -> 0.4
