"""The release policy: a release passes only if every required gate passes (gates that do not apply, `n/a`, aside)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from gates.types import GateResult

ReleaseVerdict = Literal["pass", "fail"]


def release_verdict(results: Sequence[GateResult]) -> ReleaseVerdict:
    """`fail` and `error` always block; `inconclusive` and `skip` block a required gate; `n/a` neither passes nor
    blocks. No gates, or only gates that do not apply (nothing was checked) -> fail."""
    if not any(r.applicable for r in results):
        return "fail"
    return "fail" if any(r.blocks for r in results) else "pass"


def blocking(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if r.blocks]


def not_applicable_gates(results: Sequence[GateResult]) -> list[GateResult]:
    """The gates that had no question for this candidate (verdict `n/a`)."""
    return [r for r in results if not r.applicable]
