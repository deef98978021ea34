"""The `length_drift` gate: did the candidate's answers grow or shrink? Greedy answers of base and candidate to the
same prompts, counted in generated tokens (the end-of-answer token excluded); the ratio of the candidate's total
to the base's, with a paired bootstrap interval over prompts, must stay within [1 / `max_ratio`, `max_ratio`].
A fine-tune that turns terse answers into essays costs tokens, latency and money on every request, and no
quality gate notices. With its defaults the measurement is the regression gate's first look (same prompts, same
options), so next to `regression` it costs nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.registry import GateContext, MeasureRequest, gate, probe_request
from gates.stats import paired_bootstrap
from gates.types import Example, GateResult
from probes.results import ProbeRun


@dataclass(frozen=True)
class LengthDriftParams:
    data: list[str] = field(
        default_factory=lambda: ["builtin:general"],
        metadata={"path": True, "help": "prompt suites answered (your probe suite and general prompts)"},
    )
    items: int = field(default=100, metadata={"help": "first prompts of each suite (0: all)"})
    max_ratio: float = field(default=1.5, metadata={"help": "largest tolerated length ratio (and 1/max_ratio)"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens generated per answer at most (greedy)"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap interval"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "bootstrap resamples over prompts"})
    batch_size: int = field(default=64, metadata={"help": "sequences generated together"})
    evidence: int = field(default=5, metadata={"help": "how many prompts whose answers changed most to show"})

    def __post_init__(self) -> None:
        problems = []
        if not self.data:
            problems.append(("data", 'must name at least one prompt suite, e.g. ["builtin:general"]'))
        if self.max_ratio <= 1:
            problems.append(("max_ratio", "must be above 1, e.g. 1.5 (answers 50% longer or 1/1.5 as long)"))
        if self.items < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            problems.append(("items", "must be >= 0, and max_new_tokens and batch_size at least 1"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1, e.g. 0.95"))
        if problems:
            raise ValueError(problems)


def _requests(p: LengthDriftParams) -> list[MeasureRequest]:
    out = []
    for data in p.data:
        req = probe_request(data, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
        extra = (("items", (0, p.items)),) if p.items else ()
        out.append(MeasureRequest(req.kind, req.data, req.options + extra))
    return out


def _lengths(run: ProbeRun, data: str) -> np.ndarray:
    if any(len(i.tokens) != len(i.outputs) for i in run.items):
        raise ValueError(f"{data}: the measurement holds no token counts (made by an older harness); rerun")
    return np.array([float(np.mean(i.tokens)) for i in run.items])


@gate("length_drift", params=LengthDriftParams, requests=_requests)
def length_drift(p: LengthDriftParams, ctx: GateContext) -> GateResult:
    """Candidate answer length / base answer length (total tokens) within [1/max_ratio, max_ratio] (CI bounds)."""
    base_runs, cand_runs, lb, lc, per_suite = [], [], [], [], {}
    for req in _requests(p):
        b: ProbeRun = ctx.get(req, "base")
        c: ProbeRun = ctx.get(req, "candidate")
        if [i.id for i in b.items] != [i.id for i in c.items]:
            raise ValueError(f"{req.data}: base and candidate answered different prompts")
        xb, xc = _lengths(b, req.data), _lengths(c, req.data)
        per_suite[req.data] = {
            "prompts": len(xb),
            "base_mean_tokens": round(float(xb.mean()), 3),
            "candidate_mean_tokens": round(float(xc.mean()), 3),
            "ratio": round(float(xc.sum() / max(xb.sum(), 1e-9)), 4),
            "candidate_at_cap": round(float(np.mean(xc >= p.max_new_tokens)), 4),
        }
        base_runs += b.items
        cand_runs += c.items
        lb.append(xb)
        lc.append(xc)
    xb, xc = np.concatenate(lb), np.concatenate(lc)
    if xb.sum() == 0:
        raise ValueError(f"the {ctx.reference}'s answers are all empty: no length to compare against")
    iv = paired_bootstrap(
        lambda idx: xc[idx].sum(axis=1) / np.maximum(xb[idx].sum(axis=1), 1e-9),
        len(xb),
        resamples=p.bootstrap_samples,
        level=p.confidence,
        seed=ctx.seed,
    )
    lo, hi = 1 / p.max_ratio, p.max_ratio
    if iv.lower >= lo and iv.upper <= hi:
        verdict, tail = "pass", "The whole interval is within the tolerated band."
    elif iv.lower > hi or iv.upper < lo:
        grew = iv.lower > hi
        verdict = "fail"
        tail = f"The candidate's answers are {'longer' if grew else 'shorter'} beyond the band: " + (
            "every request costs more tokens and latency. See the prompts whose answers grew most."
            if grew
            else "it may have lost content or stopped early. See the prompts whose answers shrank most."
        )
    else:
        verdict, tail = "inconclusive", "The interval straddles the band's edge: more prompts would decide it."
    at_cap = float(np.mean(xc >= p.max_new_tokens))
    head = (
        f"Answer length, candidate vs {ctx.reference}, over {len(xb)} prompts: {xc.mean():.1f} vs {xb.mean():.1f} "
        f"tokens per answer, ratio {iv.point:.3f} ({iv.level:.0%} CI {iv.lower:.3f} to {iv.upper:.3f}); tolerated "
        f"{lo:.3f} to {hi:.3f}. {at_cap:.0%} of the candidate's answers reached max_new_tokens = {p.max_new_tokens}"
        + (" (their true length is longer: the ratio is a lower bound)." if at_cap else ".")
        + " "
    )
    change = np.abs(np.log((xc + 1) / (xb + 1)))
    changed = [j for j in np.argsort(-change, kind="stable") if change[j] > 0]
    order = changed[: p.evidence]
    evidence = tuple(
        Example(
            id=base_runs[j].id,
            prompt=base_runs[j].prompt,
            base_output=base_runs[j].outputs[0],
            candidate_output=cand_runs[j].outputs[0],
            base_score=float(xb[j]),
            candidate_score=float(xc[j]),
            note=f"{xb[j]:.0f} -> {xc[j]:.0f} tokens",
        )
        for j in order
    )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric=f"answer length ratio (candidate / {ctx.reference} tokens)",
        required=ctx.required,
        baseline=round(float(xb.mean()), 4),
        candidate=round(float(xc.mean()), 4),
        delta=round(iv.point, 6),
        threshold=p.max_ratio,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        explanation=head + tail,
        evidence=evidence,
        evidence_total=len(changed),
        details={"prompts": len(xb), "suites": per_suite, "band": [round(lo, 6), hi], "candidate_at_cap": at_cap},
    )
