"""Paired statistics for before/after comparisons: bootstrap intervals with a fixed, recorded seed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

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
    point = float(statistic(np.arange(n)[None, :])[0])
    values = bootstrap_draws(statistic, n, resamples=resamples, seed=seed)
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


def bootstrap_draws(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, *, resamples: int = 2000, seed: int = 0
) -> np.ndarray:
    """The statistic on `resamples` bootstrap resamples of n paired items (the draws behind `paired_bootstrap`)."""
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // max(n, 1)))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        values[start : start + b] = statistic(rng.integers(0, n, size=(b, n)))
    return values


def bootstrap_mean_draws(values: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """The bootstrap means of per-item values (the draws behind `bootstrap_mean`'s interval)."""
    values = np.asarray(values, dtype=float)
    return bootstrap_draws(lambda idx: values[idx].mean(axis=1), len(values), resamples=resamples, seed=seed)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over the list), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


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


def obf_spent(t: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type alpha spending: the two-sided error spent by information fraction t."""
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    nd = NormalDist()
    return 2 * (1 - nd.cdf(nd.inv_cdf(1 - alpha / 2) / math.sqrt(t)))


def look_levels(sizes: tuple[int, ...], level: float) -> tuple[float, ...]:
    """Two-sided confidence level of each planned look (item counts `sizes`, increasing) such that the chance
    of any wrong decision over all looks stays at most 1 - `level`: each look spends its increment of an
    O'Brien-Fleming-type spending function, and the increments add up to alpha (union bound). One look: `level`."""
    alpha = 1 - level
    if not sizes:
        return ()
    spent = [obf_spent(n / sizes[-1], alpha) for n in sizes]
    steps = [spent[0]] + [b - a for a, b in zip(spent, spent[1:], strict=False)]
    return tuple(1 - max(s, 1e-12) for s in steps)


def look_sizes(first: int, max_items: int, available: int) -> tuple[int, ...]:
    """Item counts at each look: `first` (0: all available), then `first` more at each look, up to
    `max_items` (0 or less than `first`: one look) and never past `available`."""
    first = available if first <= 0 else min(first, available)
    last = min(max(max_items, first), available)
    sizes = list(range(first, last + 1, first)) if first > 0 else []
    if not sizes or sizes[-1] != last:
        sizes.append(last)
    return tuple(sizes)


def look_slices(first: int, n: int) -> list[tuple[int, int]]:
    """The item ranges measured for the first n items: one per look of `first` items, so each look measures only
    new items (and each slice is cached on its own)."""
    if first <= 0 or first >= n:
        return [(0, n)]
    return [(a, min(a + first, n)) for a in range(0, n, first)]


@dataclass(frozen=True)
class Power:
    """What an interval can resolve: expected half-width at `items`, and the items a tolerance needs.

    `tolerance` is the non-inferiority margin the half-width must stay below; None for superiority gates,
    where the half-width is the smallest gain (above the required margin) that the interval can show."""

    measure: str
    items: int
    sd: float  # sd of the per-item paired difference (or its stand-in)
    sd_source: str  # "prior" | "base" (the base's own measurement) | "paired" (base and candidate measured)
    half_width: float
    tolerance: float | None
    items_needed: int | None  # items that show non-inferiority at `tolerance` (80% power, true change 0)
    upper_bound: bool = False  # the sd is a worst case (independent answers), not an estimate

    @property
    def resolves(self) -> bool:
        return self.tolerance is None or self.half_width < self.tolerance


def power(
    measure: str,
    items: int,
    sd: float,
    sd_source: str,
    tolerance: float | None,
    level: float = 0.95,
    upper_bound: bool = False,
) -> Power:
    """Expected half-width of a paired interval over `items` items (z * sd / sqrt(n)), and the items that
    show non-inferiority at `tolerance` with 80% power when the true change is 0:
    n = (z_(1-alpha/2) + z_0.8)^2 * sd^2 / tolerance^2."""
    nd = NormalDist()
    z = nd.inv_cdf(1 - (1 - level) / 2)
    half = z * sd / math.sqrt(max(items, 1))
    needed = math.ceil((z + nd.inv_cdf(0.8)) ** 2 * sd**2 / tolerance**2) if tolerance and sd > 0 else None
    return Power(measure, items, sd, sd_source, half, tolerance, needed, upper_bound)


PRIOR_RATE_SD = 0.5**0.5  # paired sd of a rate's change with nothing measured: two independent fair coins


def rate_power(
    measure: str,
    items: int,
    base: np.ndarray | None,
    candidate: np.ndarray | None,
    tolerance: float | None,
    level: float = 0.95,
) -> Power:
    """Power of a paired rate (per-item values in [0, 1]): from both variants' values when measured
    ("paired"), from the base's rate p alone as if the candidate answered independently at the same rate,
    sd = sqrt(2 p (1 - p)), an upper bound for a harmless candidate ("base"), else the prior 0.71 (both flagged
    `upper_bound`: a fine-tune's answers agree with its base's far more than independent ones would; the small-noise
    adapter changed none of 100 greedy answers)."""
    if base is not None and candidate is not None and len(base) > 1:
        return power(measure, items or len(base), float(np.std(candidate - base, ddof=1)), "paired", tolerance, level)
    if base is not None and len(base) > 1:
        p = float(np.mean(base))
        return power(measure, items or len(base), math.sqrt(2 * p * (1 - p)), "base", tolerance, level, True)
    return power(measure, items, PRIOR_RATE_SD, "prior", tolerance, level, True)
