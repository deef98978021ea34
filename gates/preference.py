"""The `preference` gate: does the candidate prefer the preferred answers of held-out preference pairs more often?

Each pair (a prompt, the `chosen` answer and the `rejected` one: TRL's preference forms, `harness.core.pairs`) is
scored under the reference and the candidate without generating: each answer's log-likelihood as the prompt's
continuation (`probes.preference`; its end-of-turn marker included). A model gets a pair right when it scores the
chosen answer above the rejected one, by the summed log-probability of the answer's tokens (`normalize = "sum"`) or
by their mean, per answer token (`normalize = "tokens"`: a long answer is not penalised for its length). The
margin of a pair is score(chosen) - score(rejected).

Decision on the paired change of preference accuracy (candidate - reference, the same pairs; paired bootstrap):
- `min_gain` >= 0 (superiority): pass when the interval's lower bound is above `min_gain`, fail when its upper
  bound is at or below it (no gain shown: an unchanged candidate fails at 0), inconclusive otherwise;
- `min_gain` < 0 (non-inferiority, a tolerated drop of -min_gain): pass when the lower bound is at or above
  `min_gain`, fail when the upper bound is below it, inconclusive otherwise.
McNemar's exact test on the pairs only one model got right, and the mean margin's change with its interval, are
reported beside it. With `items` > 0, the first look scores `items` pairs and an undecided gate looks again on
`items` more at a time up to `max_items` (O'Brien-Fleming-type alpha spending keeps the error over all looks at
1 - confidence), as `regression` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.registry import GateContext, MeasureRequest, Sequential, gate
from gates.stats import (
    Decision,
    Power,
    bootstrap_mean,
    decide_non_inferiority,
    decide_superiority,
    look_levels,
    look_sizes,
    look_slices,
    mcnemar_exact,
    rate_power,
)
from gates.types import Example, GateResult, Table
from probes.results import PairScore

NORMALIZE = ("sum", "tokens")
KEY = "[gates.preference] data"


@dataclass(frozen=True)
class PreferenceParams:
    data: str = field(
        metadata={
            "path": True,
            "help": "held-out preference pairs: JSONL rows with prompt, chosen and rejected (TRL's preference forms)",
        }
    )
    normalize: str = field(
        default="sum",
        metadata={"help": 'an answer\'s score: "sum" of its tokens\' log-probabilities, or "tokens": their mean'},
    )
    min_gain: float = field(
        default=0.0,
        metadata={
            "help": "required rise of the preference accuracy, candidate - reference (the CI's lower bound must "
            "clear it); negative: the tolerated drop (non-inferiority)"
        },
    )
    items: int = field(default=0, metadata={"help": "pairs at the first look (0: every pair at once)"})
    max_items: int = field(default=0, metadata={"help": "pairs at most over all looks (0: one look)"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level, kept over all looks"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "paired bootstrap resamples over pairs"})
    batch_size: int = field(default=8, metadata={"help": "scored sequences per forward pass"})
    evidence: int = field(default=5, metadata={"help": "how many pairs the candidate lost to show"})

    def __post_init__(self) -> None:
        problems = []
        if self.normalize not in NORMALIZE:
            problems.append(("normalize", f"must be one of {', '.join(repr(n) for n in NORMALIZE)}"))
        if not -1 < self.min_gain < 1:
            problems.append(("min_gain", "is a change of accuracy: between -1 and 1, e.g. 0.05 or -0.02"))
        if self.items < 0 or self.max_items < 0:
            problems.append(("items", "items and max_items must be >= 0 (0: every pair / one look)"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1, e.g. 0.95"))
        if self.bootstrap_samples < 100:
            problems.append(("bootstrap_samples", "must be at least 100"))
        if self.batch_size < 1:
            problems.append(("batch_size", "must be at least 1"))
        if self.evidence < 0:
            problems.append(("evidence", "must be >= 0"))
        if problems:
            raise ValueError(problems)


def _request(p: PreferenceParams, part: tuple[int, int] | None = None) -> MeasureRequest:
    opts = (("key", KEY), ("batch_size", p.batch_size), *((("pairs", part),) if part is not None else ()))
    return MeasureRequest("preference", p.data, opts)


def _requests_for(p: PreferenceParams, n: int) -> list[MeasureRequest]:
    """The first n pairs, one request per look's slice (each cached on its own); n = 0: the whole file."""
    return [_request(p, sl) for sl in look_slices(p.items, n)] if n > 0 else [_request(p)]


SEQUENTIAL = Sequential(
    data=lambda p: ("preference", p.data) if p.items else None,
    looks=lambda p, available: look_sizes(p.items, p.max_items, available),
    requests=_requests_for,
)


@dataclass(frozen=True)
class Paired:
    """Reference and candidate scores of the same pairs, in file order."""

    pairs: list[PairScore]  # the reference's (prompt and answers are the same for both)
    base: np.ndarray  # (n, 2): score of chosen, of rejected
    cand: np.ndarray
    eot: tuple[str, str]  # the end-of-turn marker each model's answers were scored with

    @property
    def margin_base(self) -> np.ndarray:
        return self.base[:, 0] - self.base[:, 1]

    @property
    def margin_cand(self) -> np.ndarray:
        return self.cand[:, 0] - self.cand[:, 1]

    @property
    def right_base(self) -> np.ndarray:
        return self.margin_base > 0

    @property
    def right_cand(self) -> np.ndarray:
        return self.margin_cand > 0


def paired(
    p: PreferenceParams,
    ctx: GateContext,
    variants: tuple[str, str] = ("base", "candidate"),
    *,
    partial: bool = False,
) -> Paired:
    """Both variants' scores over every planned slice; with `partial`, over the slices measured for both so far."""
    reqs = [r for r in (ctx.requests or tuple(_requests_for(p, 0))) if r.kind == "preference" and r.data == p.data]
    if partial:
        reqs = [r for r in reqs if all(ctx.find(r, v) is not None for v in variants)]
    if not reqs:
        raise LookupError("no preference pairs measured yet")
    runs = {v: [ctx.get(r, v) for r in reqs] for v in set(variants)}
    b, c = ([x for m in runs[v] for x in m.pairs] for v in variants)
    if [x.id for x in b] != [x.id for x in c]:
        raise ValueError("the reference and the candidate were scored on different pairs")
    if not b:
        raise ValueError("no preference pairs to decide on")
    return Paired(
        b,
        np.array([x.score(p.normalize) for x in b], dtype=float),
        np.array([x.score(p.normalize) for x in c], dtype=float),
        (runs[variants[0]][0].end_of_turn, runs[variants[1]][0].end_of_turn),
    )


def _scoring(p: PreferenceParams, eot: str) -> str:
    what = (
        "summed log-probability of the answer's tokens"
        if p.normalize == "sum"
        else 'mean log-probability per answer token (normalize = "tokens")'
    )
    return what + (f", its end-of-turn {eot} included" if eot else "")


def _level(level: float) -> str:
    """A confidence level as a percentage that does not round a look's 99.93% up to 100%."""
    return f"{level:.0%}" if abs(level * 100 - round(level * 100)) < 1e-9 else f"{level:.2%}"


def _tail(p: PreferenceParams, d: Decision, ref: str, ctx: GateContext) -> str:
    superiority = p.min_gain >= 0
    if d.verdict == "pass":
        return (
            f" The interval's lower bound is above the required gain of {p.min_gain:+.1%}: the candidate prefers the "
            f"chosen answers more often than its {ref}."
            if superiority
            else f" The interval's lower bound stays within the tolerated drop of {-p.min_gain:.1%}."
        )
    if d.verdict == "fail":
        if superiority:
            return (
                f" The whole interval is at or below the required gain of {p.min_gain:+.1%}: the candidate does not "
                f"prefer the chosen answers more often than its {ref}. If it was trained on preferences, that did not "
                "carry over to these held-out pairs: check that they come from the distribution it was trained on, "
                "or train on more pairs or for more steps."
            )
        return (
            f" The whole interval is below the tolerated drop of {-p.min_gain:.1%}: the candidate lost preferences "
            f"its {ref} had (the pairs below): mix preference data into the fine-tune, or train for fewer steps."
        )
    more = f"about {d.more_items} more pairs" if d.more_items else "more pairs"
    bound = f"the required gain of {p.min_gain:+.1%}" if superiority else f"the tolerated drop of {-p.min_gain:.1%}"
    budget = " The pair budget (max_items) ran out." if len(ctx.looks) > 1 and ctx.final_look else ""
    return f" The interval straddles {bound}; {more} would likely decide it.{budget}"


def _evidence(s: Paired, p: PreferenceParams, ref: str) -> tuple[tuple[Example, ...], int]:
    """The pairs the reference got right and the candidate wrong, the candidate's most confident first; how many."""
    lost = np.flatnonzero(s.right_base & ~s.right_cand)
    worst = lost[np.argsort(s.margin_cand[lost], kind="stable")][: p.evidence]
    return (
        tuple(
            Example(
                id=s.pairs[i].id,
                prompt=s.pairs[i].prompt,
                base_output=f"prefers chosen (margin {s.margin_base[i]:+.3f})",
                candidate_output=f"prefers rejected (margin {s.margin_cand[i]:+.3f})",
                base_score=round(float(s.margin_base[i]), 4),
                candidate_score=round(float(s.margin_cand[i]), 4),
                note=f"chosen: {s.pairs[i].chosen} | rejected: {s.pairs[i].rejected}",
            )
            for i in worst
        ),
        len(lost),
    )


def _tables(s: Paired, ref: str) -> tuple[Table, ...]:
    rb, rc = s.right_base, s.right_cand
    n = len(rb)
    return (
        Table(
            "Preference accuracy of each variant (a pair is right when chosen scores above rejected)",
            ("variant", "pairs right", "accuracy", "mean margin (chosen - rejected)"),
            tuple(
                (v, f"{int(r.sum())} / {n}", f"{r.mean():.1%}", f"{m.mean():+.4f}")
                for v, r, m in ((ref, rb, s.margin_base), ("candidate", rc, s.margin_cand))
            ),
        ),
        Table(
            "Paired outcomes (the same pairs)",
            ("", "candidate right", "candidate wrong"),
            (
                (f"{ref} right", str(int((rb & rc).sum())), str(int((rb & ~rc).sum()))),
                (f"{ref} wrong", str(int((~rb & rc).sum())), str(int((~rb & ~rc).sum()))),
            ),
        ),
    )


@gate(
    "preference",
    params=PreferenceParams,
    requests=lambda p: _requests_for(p, 0),
    sequential=SEQUENTIAL,
    power=lambda p, ctx: _power(p, ctx),
)
def preference(p: PreferenceParams, ctx: GateContext) -> GateResult:
    """Preference accuracy on held-out chosen/rejected pairs (chosen scored above rejected): the candidate's gain
    over the reference must clear `min_gain` (paired CI; negative: a tolerated drop)."""
    levels = look_levels(ctx.looks, p.confidence) if ctx.looks else (p.confidence,)
    level = levels[min(ctx.look, len(levels) - 1)]
    s = paired(p, ctx)
    ref, n = ctx.reference, len(s.pairs)
    rb, rc = s.right_base.astype(float), s.right_cand.astype(float)
    iv = bootstrap_mean(rc - rb, resamples=p.bootstrap_samples, level=level, seed=ctx.seed)
    d = decide_superiority(iv, p.min_gain) if p.min_gain >= 0 else decide_non_inferiority(iv, p.min_gain)
    mc = mcnemar_exact(s.right_base, s.right_cand)
    margin = bootstrap_mean(s.margin_cand - s.margin_base, resamples=p.bootstrap_samples, level=level, seed=ctx.seed)
    eot = s.eot[1] if s.eot[0] == s.eot[1] else ""
    unit = "nats" if p.normalize == "sum" else "nats per token"
    looks = (
        f" Look {ctx.look + 1} of {len(ctx.looks)} ({n} of at most {ctx.looks[-1]} pairs; {level:.2%} interval so "
        f"that all looks together keep {p.confidence:.0%})."
        if len(ctx.looks) > 1
        else ""
    )
    rule = (
        f"required gain > {p.min_gain:+.1%}"
        if p.min_gain >= 0
        else f"tolerated drop {-p.min_gain:.1%} (non-inferiority)"
    )
    head = (
        f"Preference accuracy {rc.mean():.1%} vs {ref} {rb.mean():.1%} on {n} held-out pairs (chosen scored above "
        f"rejected by the {_scoring(p, eot)}): change {iv.point:+.1%} ({_level(level)} CI {iv.lower:+.1%} to "
        f"{iv.upper:+.1%}); {rule} -> {d.verdict}. {mc.describe()}. Mean margin (chosen - rejected) "
        f"{s.margin_cand.mean():+.3f} vs {ref} {s.margin_base.mean():+.3f} {unit}: change {margin.point:+.3f} (CI "
        f"{margin.lower:+.3f} to {margin.upper:+.3f}).{looks}"
    )
    evidence, lost = _evidence(s, p, ref)
    shown = (
        f" {lost} pair(s) the {ref} got right and the candidate got wrong"
        + (f"; the {len(evidence)} worst are shown" if evidence else "")
        + (f", {lost - len(evidence)} more beyond them." if lost > len(evidence) else ".")
        if lost
        else ""
    )
    return GateResult(
        name=ctx.name,
        verdict=d.verdict,
        metric=f"preference accuracy change (candidate - {ref})",
        baseline=round(float(rb.mean()), 6),
        candidate=round(float(rc.mean()), 6),
        delta=round(iv.point, 6),
        threshold=p.min_gain,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        required=ctx.required,
        explanation=head + _tail(p, d, ref, ctx) + shown,
        evidence=evidence,
        evidence_total=lost,
        details={
            "items": n,
            "normalize": p.normalize,
            "end_of_turn": {"base": s.eot[0], "candidate": s.eot[1]},
            "test": "superiority" if p.min_gain >= 0 else "non-inferiority",
            "accuracy": {"base": float(rb.mean()), "candidate": float(rc.mean())},
            "mcnemar": {"lost": mc.lost, "gained": mc.gained, "p_value": mc.p_value},
            "margin": {
                "unit": unit,
                "base": float(s.margin_base.mean()),
                "candidate": float(s.margin_cand.mean()),
                "change": round(margin.point, 6),
                "ci": [round(margin.lower, 6), round(margin.upper, 6)],
            },
            "lost_pairs": lost,
            "more_items_to_decide": d.more_items,
            "sequential": {
                "looks": list(ctx.looks),
                "look": ctx.look + 1,
                "level": level,
                "spending": "Lan-DeMets O'Brien-Fleming-type, union bound over looks",
            },
            "bootstrap": {"resamples": iv.resamples, "level": iv.level, "seed": iv.seed, "method": iv.method},
        },
        tables=_tables(s, ref),
    )


def _power(p: PreferenceParams, ctx: GateContext) -> list[Power]:
    """What the accuracy interval can resolve, from the best variance estimate at hand (paired, the reference's
    accuracy alone, or the prior); a tolerance only for non-inferiority (min_gain < 0)."""
    n = ctx.looks[-1] if ctx.looks else ctx.sizes.get(p.data, 0)
    tol = -p.min_gain if p.min_gain < 0 else None
    measure = "preference accuracy"
    for variants in (("base", "candidate"), ("base", "base")):
        try:
            s = paired(p, ctx, variants, partial=True)
        except (LookupError, ValueError):
            continue
        cand = s.right_cand.astype(float) if variants[1] == "candidate" else None
        return [rate_power(measure, n, s.right_base.astype(float), cand, tol, p.confidence)]
    return [rate_power(measure, n, None, None, tol, p.confidence)]
