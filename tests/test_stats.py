import numpy as np
import pytest

from gates import GateResult, blocking, decide_superiority, paired_bootstrap, release_verdict
from gates.stats import Interval


def test_bootstrap_is_seeded_and_covers_the_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, size=200)

    def mean(idx):
        return x[idx].mean(axis=1)

    a = paired_bootstrap(mean, len(x), resamples=2000, seed=7)
    b = paired_bootstrap(mean, len(x), resamples=2000, seed=7)
    assert a == b
    assert a.lower < x.mean() < a.upper
    # a normal-theory interval of the mean has about the same width
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert (a.upper - a.lower) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert a.point == pytest.approx(x.mean())


def _iv(lo, hi, point=None, n=40):
    return Interval(point if point is not None else (lo + hi) / 2, lo, hi, 0.95, n, 1000, 0)


def test_superiority_decisions():
    assert decide_superiority(_iv(0.06, 0.2), 0.05).verdict == "pass"
    assert decide_superiority(_iv(-0.1, 0.04), 0.05).verdict == "fail"
    # an unchanged candidate (interval exactly at the margin) is not passed
    assert decide_superiority(_iv(0.0, 0.0), 0.0).verdict == "fail"
    d = decide_superiority(_iv(0.02, 0.12, point=0.07, n=40), 0.05)
    assert d.verdict == "inconclusive"
    # half-width 0.05, gap 0.02 -> n * (0.05/0.02)^2 = 250 in all, 210 more
    assert d.more_items == 210


def _r(verdict, required=True):
    return GateResult(name=f"g-{verdict}", verdict=verdict, metric="m", explanation="e", required=required)


def test_release_policy():
    assert release_verdict([_r("pass"), _r("pass")]) == "pass"
    for bad in ("fail", "error", "inconclusive", "skip"):
        assert release_verdict([_r("pass"), _r(bad)]) == "fail"
    assert release_verdict([_r("pass"), _r("fail", required=False)]) == "pass"
    assert release_verdict([]) == "fail"
    assert [g.name for g in blocking([_r("pass"), _r("error")])] == ["g-error"]
    with pytest.raises(ValueError):
        _r("maybe")
