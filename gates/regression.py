"""The `regression` gate (catastrophic forgetting): general ability and general-text perplexity must not
drop beyond a tolerance, decided by non-inferiority on paired intervals.

General ability is scored per item in one of three ways (`score`):
- `greedy` (default): one greedy answer per prompt, pass/fail, with McNemar's exact test beside the interval.
- `samples`: `n` samples per prompt at `temperature`, per-item pass rate (the bootstrap resamples items,
  so the samples of a prompt stay together: clustered by item).
- `likelihood`: the per-token probability the model gives the item's reference answer (prompt -> exactly
  the reference, then end of turn; the geometric mean of its token probabilities), from one forward pass.
  Continuous and paired, it resolves a harmless change to a few hundredths of a point at a fifth of the
  cost of a greedy answer (`benchmarks/regression_power.py`), but it is not the default: it measures how
  likely the model is to phrase the answer tersely, and a fine-tune that makes answers terse raises it
  while the model forgets (the demo's candidate: 12.8% -> 24.4% while its greedy pass rate fell 21 points).
`max_drop` is in points of the score (pass rate or per-token probability).

With `max_items` above `items`, an undecided gate looks again on `items` more prompts at a time and stops
as soon as it decides (O'Brien-Fleming-type alpha spending keeps the error over all looks at 1 - confidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.perplexity import PRIOR_PPL_SD, PairedNLL
from gates.registry import GateContext, MeasureRequest, Sequential, gate, probe_request
from gates.stats import (
    PRIOR_RATE_SD,
    Power,
    bootstrap_mean,
    decide_non_inferiority,
    look_levels,
    look_sizes,
    mcnemar_exact,
    paired_bootstrap,
    power,
)
from gates.types import Example, GateResult
from probes.results import NLLMeasurement

_ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}
# paired sd of the per-token reference probability's change before anything is measured: on the embedded model
# a small-noise adapter measured 0.0018 and a 12-step narrow fine-tune on every linear layer 0.12
PRIOR_LIKELIHOOD_SD = 0.15
SCORES = ("likelihood", "samples", "greedy")


@dataclass(frozen=True)
class RegressionParams:
    data: str = field(
        default="builtin:general",
        metadata={"path": True, "help": "general prompts: probe suite rows, with a `completion` (reference answer)"},
    )
    text: str = field(default="builtin:general_text", metadata={"path": True, "help": "general text for PPL"})
    score: str = field(default="greedy", metadata={"help": "greedy | samples | likelihood (see the module doc)"})
    max_drop: float = field(default=0.05, metadata={"help": "tolerated drop of the general score (0.05 = 5 points)"})
    max_relative_increase: float = field(default=0.05, metadata={"help": "tolerated relative PPL increase"})
    items: int = field(default=100, metadata={"help": "prompts at the first look (0: the whole suite)"})
    max_items: int = field(default=400, metadata={"help": "prompts at most over all looks (0: one look)"})
    n: int = field(default=4, metadata={"help": "samples per prompt with score = 'samples'"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature with score = 'samples'"})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens generated per answer at most (samples, greedy)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level, kept over all looks"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "bootstrap resamples"})
    batch_size: int = field(default=16, metadata={"help": "sequences generated or scored together"})
    evidence: int = field(default=5, metadata={"help": "how many forgotten items to show"})

    def __post_init__(self) -> None:
        problems = []
        if self.score not in SCORES:
            problems.append(("score", f"must be one of {', '.join(SCORES)}"))
        if not 0 <= self.max_drop < 1:
            problems.append(("max_drop", "must be in [0, 1), e.g. 0.05"))
        if self.max_relative_increase < 0:
            problems.append(("max_relative_increase", "must be >= 0, e.g. 0.05"))
        if self.items < 0 or self.max_items < 0:
            problems.append(("items", "items and max_items must be >= 0 (0: the whole suite / one look)"))
        if self.score == "samples" and (self.n < 2 or self.temperature <= 0):
            problems.append(("n", "score = 'samples' needs n >= 2 and temperature > 0"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1"))
        if problems:
            raise ValueError(problems)


def _slices(first: int, n: int) -> list[tuple[int, int]]:
    """The item ranges measured for the first n items: one per look, so each look measures only new items."""
    if first <= 0 or first >= n:
        return [(0, n)]
    return [(a, min(a + first, n)) for a in range(0, n, first)]


def _score_requests(p: RegressionParams, n: int) -> list[MeasureRequest]:
    out = []
    for sl in _slices(p.items, n) if n > 0 else [None]:
        extra = (("items", sl),) if sl is not None else ()
        if p.score == "likelihood":
            out.append(MeasureRequest("nll", p.data, (("max_length", 1024), ("batch_size", p.batch_size), *extra)))
        else:
            samples = p.score == "samples"
            req = probe_request(
                p.data,
                n=p.n if samples else 1,
                temperature=p.temperature if samples else 0.0,
                max_new_tokens=p.max_new_tokens,
                seed=p.seed,
                batch_size=p.batch_size,
            )
            out.append(MeasureRequest(req.kind, req.data, req.options + extra))
    return out


def _text_request(p: RegressionParams) -> MeasureRequest:
    return MeasureRequest("nll", p.text, (("max_length", 1024), ("batch_size", 8)))


def _requests_for(p: RegressionParams, n: int) -> list[MeasureRequest]:
    return [*_score_requests(p, n), _text_request(p)]


def _requests(p: RegressionParams) -> list[MeasureRequest]:
    return _requests_for(p, 0)  # whole suite in one piece; the pipeline plans the looks (`SEQUENTIAL`)


SEQUENTIAL = Sequential(
    data=lambda p: ("nll" if p.score == "likelihood" else "probes", p.data),
    looks=lambda p, available: look_sizes(p.items, p.max_items, available),
    requests=_requests_for,
)


def reference_score(docs: list) -> np.ndarray:
    """Per item, the per-token probability of its reference answer: exp(-NLL / tokens), the geometric mean
    of the answer's token probabilities (end of turn included). Not the whole answer's probability: a small
    model puts most of its mass on other phrasings ("3 * 3 = 9"), which would leave every item near 0."""
    return np.exp(-np.array([d.nll / max(d.tokens, 1) for d in docs]))


@dataclass(frozen=True)
class _Scores:
    """Per-item scores of base and candidate on the same items, in suite order."""

    ids: list[str]
    prompts: list[str]
    base: np.ndarray
    cand: np.ndarray
    base_out: list[str | None]
    cand_out: list[str | None]
    passed: tuple[np.ndarray, np.ndarray] | None  # greedy: pass/fail per item, for McNemar


def _scores(
    p: RegressionParams, ctx: GateContext, variants: tuple[str, str] = ("base", "candidate"), *, partial: bool = False
) -> _Scores:
    """Scores over every planned slice; with `partial`, over the slices measured for both `variants` so far."""
    reqs = [r for r in (ctx.requests or tuple(_score_requests(p, 0))) if r.data == p.data and r != _text_request(p)]
    if partial:
        reqs = [r for r in reqs if all(ctx.find(r, v) is not None for v in variants)]
        if not reqs:
            raise LookupError("nothing measured yet")
    per = {v: [ctx.get(r, v) for r in reqs] for v in set(variants)}
    if p.score == "likelihood":
        docs = {v: [d for m in per[v] for d in m.docs] for v in variants}
        b, c = docs[variants[0]], docs[variants[1]]
        if [d.id for d in b] != [d.id for d in c]:
            raise ValueError("base and candidate were scored on different items")
        return _Scores(
            [d.id for d in b],
            [d.preview for d in b],
            reference_score(b),
            reference_score(c),
            [None] * len(b),
            [None] * len(c),
            None,
        )
    items = {v: [i for m in per[v] for i in m.items] for v in variants}
    b, c = items[variants[0]], items[variants[1]]
    if [i.id for i in b] != [i.id for i in c]:
        raise ValueError("base and candidate were scored on different items")
    passed = (np.array([i.passed[0] for i in b]), np.array([i.passed[0] for i in c])) if p.score == "greedy" else None
    return _Scores(
        [i.id for i in b],
        [i.prompt for i in b],
        np.array([i.c / i.n for i in b]),
        np.array([i.c / i.n for i in c]),
        [i.outputs[0] for i in b],
        [i.outputs[0] for i in c],
        passed,
    )


_WHAT = {
    "likelihood": "per-token probability of the reference answer",
    "samples": "pass rate over samples",
    "greedy": "greedy pass rate",
}


@gate(
    "regression",
    params=RegressionParams,
    requests=_requests,
    sequential=SEQUENTIAL,
    power=lambda p, ctx: _power(p, ctx),
)
def regression(p: RegressionParams, ctx: GateContext) -> GateResult:
    """General score drop within `max_drop` and PPL increase within `max_relative_increase` (interval bounds)."""
    s = _scores(p, ctx)
    levels = look_levels(ctx.looks, p.confidence) if ctx.looks else (p.confidence,)
    level = levels[min(ctx.look, len(levels) - 1)]
    diff = s.cand - s.base
    iv = bootstrap_mean(diff, resamples=p.bootstrap_samples, level=level, seed=ctx.seed)
    d_rate = decide_non_inferiority(iv, -p.max_drop)

    treq = _text_request(p)
    tb: NLLMeasurement = ctx.get(treq, "base")
    tc: NLLMeasurement = ctx.get(treq, "candidate")
    pair = PairedNLL.of(tb, tc)
    iv_ppl = paired_bootstrap(
        lambda idx: np.exp(pair.log_ppl_ratio(idx)) - 1,
        len(pair.nb),
        resamples=p.bootstrap_samples,
        level=level,
        seed=ctx.seed,
    )
    d_ppl = decide_non_inferiority(iv_ppl, p.max_relative_increase, higher_is_better=False)
    verdict = max(d_rate.verdict, d_ppl.verdict, key=_ORDER.__getitem__)

    what = _WHAT[p.score]
    mc = mcnemar_exact(*s.passed) if s.passed is not None else None
    looks = (
        f" Look {ctx.look + 1} of {len(ctx.looks)} ({len(diff)} of at most {ctx.looks[-1]} prompts; "
        f"{level:.2%} interval so that all looks together keep {p.confidence:.0%})."
        if len(ctx.looks) > 1
        else ""
    )
    rate = (
        f"General {what} {s.cand.mean():.1%} vs base {s.base.mean():.1%} on {len(diff)} prompts: change "
        f"{iv.point:+.1%} ({level:.0%} CI {iv.lower:+.1%} to {iv.upper:+.1%}); tolerated drop "
        f"{p.max_drop:.0%} -> {d_rate.verdict}." + (f" {mc.describe()}." if mc else "") + looks
    )
    ppl = (
        f" General-text PPL {tc.perplexity:.3f} vs {tb.perplexity:.3f} (bits per byte {tc.bits_per_byte:.4f} vs "
        f"{tb.bits_per_byte:.4f}): {iv_ppl.point:+.1%} ({iv_ppl.lower:+.1%} to {iv_ppl.upper:+.1%}); "
        f"tolerated increase {p.max_relative_increase:.0%} -> {d_ppl.verdict}."
    )
    if verdict == "fail":
        tail = (
            " The candidate forgot general ability: mix general data into training (replay), lower the "
            "learning rate or the number of epochs, or lower the LoRA rank."
        )
    elif verdict == "inconclusive":
        more = [m for m in (d_rate.more_items, d_ppl.more_items) if m]
        budget = " The item budget (max_items) ran out." if len(ctx.looks) > 1 and ctx.final_look else ""
        tail = (
            " An interval straddles its tolerance"
            + (f": about {max(more)} more prompts or documents would likely decide it." if more else ".")
            + budget
        )
    else:
        tail = " Both intervals stay within their tolerances."
    forgotten = [j for j in np.argsort(diff, kind="stable") if diff[j] < 0][: p.evidence]
    evidence = tuple(
        Example(
            id=s.ids[j],
            prompt=s.prompts[j],
            base_output=s.base_out[j],
            candidate_output=s.cand_out[j],
            base_score=round(float(s.base[j]), 4),
            candidate_score=round(float(s.cand[j]), 4),
            note=f"{what}: {s.base[j]:.2f} -> {s.cand[j]:.2f}",
        )
        for j in forgotten
    )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric=f"general {what} change (candidate - base)",
        required=ctx.required,
        baseline=round(float(s.base.mean()), 6),
        candidate=round(float(s.cand.mean()), 6),
        delta=round(iv.point, 6),
        threshold=-p.max_drop,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        explanation=rate + ppl + tail,
        evidence=evidence,
        details={
            "score": p.score,
            "items": len(diff),
            "sd_paired": round(float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, 6),
            "pass_rate": {"verdict": d_rate.verdict, "more_items_to_decide": d_rate.more_items},
            **({"mcnemar": {"lost": mc.lost, "gained": mc.gained, "p_value": mc.p_value}} if mc else {}),
            "sequential": {
                "looks": list(ctx.looks),
                "look": ctx.look + 1,
                "level": level,
                "spending": "Lan-DeMets O'Brien-Fleming-type, union bound over looks",
            },
            "perplexity": {
                "base": round(tb.perplexity, 6),
                "candidate": round(tc.perplexity, 6),
                "relative_increase": round(iv_ppl.point, 6),
                "ci": [round(iv_ppl.lower, 6), round(iv_ppl.upper, 6)],
                "threshold": p.max_relative_increase,
                "verdict": d_ppl.verdict,
                "base_bits_per_byte": round(tb.bits_per_byte, 6),
                "candidate_bits_per_byte": round(tc.bits_per_byte, 6),
            },
            "bootstrap": {
                "resamples": iv.resamples,
                "level": iv.level,
                "seed": iv.seed,
                "method": "paired bootstrap over items (clustered: a prompt's samples stay together) / documents",
            },
        },
    )


def _power(p: RegressionParams, ctx: GateContext) -> list[Power]:
    """What the general-score and text-PPL intervals can resolve, from the best variance estimate at hand."""
    n = ctx.looks[-1] if ctx.looks else 0
    out = []
    try:
        s = _scores(p, ctx, partial=True)
        sd, src, n = float((s.cand - s.base).std(ddof=1)), "paired", n or len(s.base)
    except (LookupError, ValueError):
        try:
            s = _scores(p, ctx, ("base", "base"), partial=True)
            sd = (
                float(s.base.std(ddof=1)) * 2**0.5
                if p.score == "likelihood"
                else float((2 * s.base.mean() * (1 - s.base.mean())) ** 0.5)
            )
            src, n = "base", n or len(s.base)
        except (LookupError, ValueError):
            sd, src = (PRIOR_LIKELIHOOD_SD if p.score == "likelihood" else PRIOR_RATE_SD), "prior"
    bound = p.score != "likelihood" and src != "paired"  # sqrt(2p(1-p)) or 0.71: independent answers, a worst case
    out.append(power(f"general {_WHAT[p.score]}", n, sd, src, p.max_drop, p.confidence, bound))
    tb, tc = ctx.find(_text_request(p), "base"), ctx.find(_text_request(p), "candidate")
    if tb is not None and tc is not None:
        pair = PairedNLL.of(tb, tc)
        rel = np.exp(pair.nc / pair.uc - pair.nb / pair.ub) - 1
        out.append(power("general-text PPL", len(rel), float(rel.std(ddof=1)), "paired", p.max_relative_increase))
    else:
        docs = len(tb.docs) if tb is not None else ctx.sizes.get(p.text, 0)
        out.append(power("general-text PPL", docs, PRIOR_PPL_SD, "prior", p.max_relative_increase, p.confidence))
    return out
