"""The release policy: a release passes only if every required gate passes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from gates.types import GateResult

ReleaseVerdict = Literal["pass", "fail"]


def release_verdict(results: Sequence[GateResult]) -> ReleaseVerdict:
    """`fail` and `error` always block; `inconclusive` and `skip` block a required gate; no gates -> fail."""
    if not results:
        return "fail"
    return "fail" if any(r.blocks for r in results) else "pass"


def blocking(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if r.blocks]
