"""Paired statistics for before/after comparisons: bootstrap intervals with a fixed, recorded seed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided percentile interval at `level`."""

    point: float
    lower: float
    upper: float
    level: float
    n: int
    resamples: int
    seed: int
    method: str = "paired bootstrap over items"


def paired_bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap a statistic of paired items.

    `statistic(idx)` takes an integer array of shape (B, n) of item indices (each row one resample;
    base and candidate are indexed together, which is what makes it paired) and returns B values.
    The point estimate is the statistic on the original items.
    """
    if n < 1:
        raise ValueError("paired_bootstrap needs at least one item")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    point = float(statistic(np.arange(n)[None, :])[0])
    values = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // max(n, 1)))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        values[start : start + b] = statistic(rng.integers(0, n, size=(b, n)))
    alpha = (1 - level) / 2
    lower, upper = np.quantile(values, [alpha, 1 - alpha])
    return Interval(point, float(lower), float(upper), level, n, resamples, seed)


def bootstrap_mean(values: np.ndarray, *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Interval of the mean of per-item values (e.g. paired differences, candidate - base, one per item)."""
    values = np.asarray(values, dtype=float)
    return paired_bootstrap(
        lambda idx: values[idx].mean(axis=1), len(values), resamples=resamples, level=level, seed=seed
    )


@dataclass(frozen=True)
class Decision:
    verdict: str  # pass | fail | inconclusive
    more_items: int | None  # for inconclusive: roughly how many more items would decide it


def decide_superiority(iv: Interval, margin: float) -> Decision:
    """'Improves': pass when the lower bound clears `margin`, fail when the upper bound stays below it.

    A lower bound exactly at the margin does not pass: an unchanged candidate must not be promoted.
    """
    if iv.lower > margin:
        return Decision("pass", None)
    if iv.upper <= margin:
        return Decision("fail", None)
    return Decision("inconclusive", more_items_needed(iv, margin))


def more_items_needed(iv: Interval, margin: float) -> int | None:
    """How many more items would shrink the interval (as 1/sqrt(n)) enough to clear `margin`."""
    gap = abs(iv.point - margin)
    half = (iv.upper - iv.lower) / 2
    if gap == 0 or half == 0:
        return None
    needed = iv.n * (half / gap) ** 2
    return max(1, math.ceil(needed - iv.n))


def decide_non_inferiority(iv: Interval, bound: float, *, higher_is_better: bool = True) -> Decision:
    """'Does not regress': pass when the whole interval stays on the good side of `bound`
    (for higher-is-better metrics the lower bound is >= bound; else the upper bound is <= bound), fail
    when the whole interval is past it, inconclusive when it straddles."""
    lo, hi = (iv.lower, iv.upper) if higher_is_better else (-iv.upper, -iv.lower)
    b = bound if higher_is_better else -bound
    if lo >= b:
        return Decision("pass", None)
    if hi < b:
        return Decision("fail", None)
    return Decision("inconclusive", more_items_needed(iv, bound))


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired pass/fail: a two-sided binomial test on the discordant pairs.

    `lost`: items the base passed and the candidate failed; `gained`: the reverse. Under "no change"
    each discordant pair is a fair coin, so p = P(min(lost, gained) or fewer of lost + gained | 1/2), doubled.
    """

    lost: int
    gained: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.lost + self.gained

    def describe(self) -> str:
        return f"McNemar exact: {self.lost} lost / {self.gained} gained, p = {self.p_value:.3g}"


def mcnemar_exact(base: np.ndarray, candidate: np.ndarray) -> McNemar:
    """McNemar's exact test of paired booleans (one per item: did base / candidate pass it)."""
    b = np.asarray(base, dtype=bool)
    c = np.asarray(candidate, dtype=bool)
    if b.shape != c.shape:
        raise ValueError("base and candidate must have one outcome per item each")
    lost, gained = int((b & ~c).sum()), int((~b & c).sum())
    n, k = lost + gained, min(lost, gained)
    if n == 0:
        return McNemar(lost, gained, 1.0)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return McNemar(lost, gained, min(1.0, 2 * tail))
