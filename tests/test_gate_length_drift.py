"""The `length_drift` gate: pure decisions on known lengths, then end to end on the tiny model next to
`regression` (whose first look it shares: no extra measurement)."""

import numpy as np
import pytest

from gates import GateContext, get_gate
from gates.length_drift import LengthDriftParams
from harness.pipeline import run
from probes.results import ProbeOutcome, ProbeRun

rng = np.random.default_rng(0)
BASE = rng.integers(5, 30, 100)  # tokens per base answer


def _run(lengths, prefix="x") -> ProbeRun:
    return ProbeRun(
        tuple(
            ProbeOutcome(f"q{i}", f"prompt {i}", (f"{prefix} {i} " * int(n),), (True,), (True,), ("",), (int(n),))
            for i, n in enumerate(lengths)
        )
    )


def _decide(base_lengths, cand_lengths, **kw):
    p = LengthDriftParams(**kw)
    gdef = get_gate("length_drift")
    (req,) = gdef.requests(p)
    m = {(req, "base"): _run(base_lengths, "b"), (req, "candidate"): _run(cand_lengths, "c")}
    return gdef.decide(p, GateContext("length_drift", True, 0, m, (req,)))


def test_same_lengths_pass_with_a_ratio_of_exactly_one():
    g = _decide(BASE, BASE)
    assert g.verdict == "pass" and g.delta == 1.0 and g.ci == (1.0, 1.0) and g.evidence == ()


def test_small_noise_in_length_passes():
    g = _decide(BASE, np.maximum(BASE + rng.integers(-2, 3, 100), 1))
    assert g.verdict == "pass" and 0.9 < g.ci[0] < g.ci[1] < 1.1


def test_essays_fail_and_the_evidence_is_the_answers_that_grew_most():
    cand = BASE * 3
    cand[7] = BASE[7] * 10
    g = _decide(BASE, cand)
    assert g.verdict == "fail" and g.ci[0] > 1.5 and "longer" in g.explanation
    assert g.evidence[0].id == "q7" and g.evidence[0].note == f"{BASE[7]} -> {BASE[7] * 10} tokens"
    assert len(g.evidence) == 5


def test_answers_cut_to_a_third_fail_as_shorter():
    g = _decide(BASE, np.maximum(BASE // 3, 1))
    assert g.verdict == "fail" and g.ci[1] < 1 / 1.5 and "shorter" in g.explanation


def test_a_change_at_the_band_edge_is_inconclusive():
    g = _decide(BASE[:20], (BASE[:20] * 1.5).astype(int) + rng.integers(-3, 4, 20))
    assert g.verdict == "inconclusive" and g.ci[0] < 1.5 < g.ci[1]


def test_a_measurement_without_token_counts_is_an_error_not_a_pass():
    p = LengthDriftParams()
    gdef = get_gate("length_drift")
    (req,) = gdef.requests(p)
    old = ProbeRun(tuple(ProbeOutcome(f"q{i}", "p", ("a",), (True,), (True,), ("",)) for i in range(3)))
    with pytest.raises(ValueError, match="no token counts"):
        gdef.decide(p, GateContext("length_drift", True, 0, {(req, "base"): old, (req, "candidate"): old}, (req,)))


def test_bad_params_name_the_key():
    with pytest.raises(ValueError, match="max_ratio"):
        LengthDriftParams(max_ratio=1.0)


def test_next_to_regression_it_measures_nothing_more(tmp_path, tiny_base, tiny_zero_adapter):
    cfg = tmp_path / "release.toml"
    head = f'[model]\nbase = "{tiny_base.dir}"\nadapter = "{tiny_zero_adapter}"\n'
    head += f'[run]\ncache_dir = "{tmp_path / "c"}"\n'
    regression = "[gates.regression]\nitems = 30\nmax_items = 0\nmax_new_tokens = 8\n"
    cfg.write_text(head + regression)
    first = run(cfg)
    cfg.write_text(head + regression + "[gates.length_drift]\nitems = 30\nmax_new_tokens = 8\n")
    both = run(cfg, tmp_path / "out")
    g = next(g for g in both.report.gates if g.name == "length_drift")
    assert first.cache_misses > 0 and both.cache_misses == 0  # the regression's answers, counted
    assert g.verdict == "pass" and g.delta == 1.0 and g.details["prompts"] == 30
    assert "`length_drift`" in (tmp_path / "out" / "report.md").read_text()
