"""The `perplexity` gate: the candidate must fit held-out domain text better than its base."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.registry import GateContext, MeasureRequest, gate
from gates.stats import Power, decide_superiority, paired_bootstrap, power
from gates.types import Example, GateResult
from probes.results import NLLMeasurement


@dataclass(frozen=True)
class PerplexityParams:
    data: str = field(metadata={"path": True, "help": "held-out domain text: JSONL text/chat rows or .txt"})
    min_relative_improvement: float = field(
        default=0.01,
        metadata={"help": "required relative PPL drop (0.05 = 5% lower); the CI's lower bound must clear it"},
    )
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap interval"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "paired bootstrap resamples over documents"})
    max_length: int = field(default=1024, metadata={"help": "window length in tokens (capped at the model's context)"})
    batch_size: int = field(default=8, metadata={"help": "windows per forward pass"})
    evidence: int = field(default=5, metadata={"help": "how many worst documents to show"})

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1, e.g. 0.95"))
        if self.bootstrap_samples < 100:
            problems.append(("bootstrap_samples", "must be at least 100"))
        if self.max_length < 2:
            problems.append(("max_length", "must be at least 2 tokens"))
        if self.batch_size < 1:
            problems.append(("batch_size", "must be at least 1"))
        if not -1 < self.min_relative_improvement < 1:
            problems.append(("min_relative_improvement", "is a fraction: between -1 and 1, e.g. 0.05"))
        if problems:
            raise ValueError(problems)


@dataclass(frozen=True)
class PairedNLL:
    """Per-document NLL of base and candidate on the same documents, per token, or per byte when the
    tokenizers differ (token-level PPL is then not comparable; bits per byte is)."""

    nb: np.ndarray
    ub: np.ndarray
    nc: np.ndarray
    uc: np.ndarray
    unit: str

    @classmethod
    def of(cls, base: NLLMeasurement, cand: NLLMeasurement) -> PairedNLL:
        if [d.id for d in base.docs] != [d.id for d in cand.docs]:
            raise ValueError("base and candidate were measured on different documents")
        same = [d.tokens for d in base.docs] == [d.tokens for d in cand.docs]
        units = [np.array([d.tokens if same else d.bytes for d in m.docs], dtype=float) for m in (base, cand)]
        nll = [np.array([d.nll for d in m.docs]) for m in (base, cand)]
        return cls(nll[0], units[0], nll[1], units[1], "token" if same else "byte")

    def log_ppl_ratio(self, idx: np.ndarray) -> np.ndarray:
        """log(PPL_candidate / PPL_base) on each row of item indices (one bootstrap resample a row)."""
        return self.nc[idx].sum(axis=1) / self.uc[idx].sum(axis=1) - self.nb[idx].sum(axis=1) / self.ub[idx].sum(axis=1)


def _requests(p: PerplexityParams) -> list[MeasureRequest]:
    return [MeasureRequest("nll", p.data, (("max_length", p.max_length), ("batch_size", p.batch_size)))]


PRIOR_PPL_SD = 0.05  # per-document sd of the relative PPL change before base and candidate are measured


def _power(p: PerplexityParams, ctx: GateContext) -> list[Power]:
    """The smallest relative improvement (above the required one) the paired interval can show."""
    req = _requests(p)[0]
    b, c = ctx.find(req, "base"), ctx.find(req, "candidate")
    if b is not None and c is not None:
        pair = PairedNLL.of(b, c)
        rel = 1 - np.exp(pair.nc / pair.uc - pair.nb / pair.ub)
        return [power("relative PPL improvement", len(rel), float(rel.std(ddof=1)), "paired", None, p.confidence)]
    return [power("relative PPL improvement", ctx.sizes.get(p.data, 0), PRIOR_PPL_SD, "prior", None, p.confidence)]


@gate("perplexity", params=PerplexityParams, requests=_requests, power=lambda p, ctx: _power(p, ctx))
def perplexity(p: PerplexityParams, ctx: GateContext) -> GateResult:
    """Candidate PPL lower than base by `min_relative_improvement`, decided on the paired bootstrap CI."""
    req = _requests(p)[0]
    base: NLLMeasurement = ctx.get(req, "base")
    cand: NLLMeasurement = ctx.get(req, "candidate")
    pair = PairedNLL.of(base, cand)
    nb, tb, nc, tc, unit = pair.nb, pair.ub, pair.nc, pair.uc, pair.unit

    def improvement(idx: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(pair.log_ppl_ratio(idx))

    iv = paired_bootstrap(improvement, len(nb), resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
    decision = decide_superiority(iv, p.min_relative_improvement)
    b_ppl = float(np.exp(nb.sum() / tb.sum()))
    c_ppl = float(np.exp(nc.sum() / tc.sum()))
    ref = ctx.reference
    head = (
        f"Candidate perplexity {c_ppl:.3f} vs {ref} {b_ppl:.3f} per {unit}: {iv.point:+.1%} relative improvement "
        f"({iv.level:.0%} CI {iv.lower:+.1%} to {iv.upper:+.1%}, {iv.n} documents); "
        f"required {p.min_relative_improvement:+.1%}. Bits per byte {base.bits_per_byte:.4f} -> "
        f"{cand.bits_per_byte:.4f}."
    )
    if decision.verdict == "pass":
        tail = " The interval's lower bound clears the requirement."
    elif decision.verdict == "fail":
        tail = (
            " The whole interval is at or below the requirement: the fine-tune does not fit this domain text better"
            f" than its {ref}. Train longer or on more domain data, check the adapter is the intended one,"
            " or lower min_relative_improvement if a smaller gain is acceptable."
        )
    else:
        more = f"about {decision.more_items} more documents" if decision.more_items else "more documents"
        tail = f" The interval straddles the requirement; {more} in `data` would likely decide it."

    per_doc = nc / tc - nb / tb  # per-unit NLL change; positive = candidate worse
    worst = np.argsort(-per_doc, kind="stable")[: p.evidence]
    evidence = tuple(
        Example(
            id=base.docs[i].id,
            prompt=base.docs[i].preview,
            base_score=round(float(np.exp(nb[i] / tb[i])), 4),
            candidate_score=round(float(np.exp(nc[i] / tc[i])), 4),
            note=f"per-{unit} NLL {per_doc[i]:+.3f} nats ({ref} PPL -> candidate PPL)",
        )
        for i in worst
    )
    return GateResult(
        name=ctx.name,
        verdict=decision.verdict,
        metric=f"relative perplexity improvement (per {unit})",
        baseline=round(b_ppl, 6),
        candidate=round(c_ppl, 6),
        delta=round(iv.point, 6),
        threshold=p.min_relative_improvement,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        required=ctx.required,
        explanation=head + tail,
        evidence=evidence,
        evidence_total=len(nb),
        details={
            "base_bits_per_byte": round(base.bits_per_byte, 6),
            "candidate_bits_per_byte": round(cand.bits_per_byte, 6),
            "documents": iv.n,
            "scored_tokens_base": base.total_tokens,
            "scored_tokens_candidate": cand.total_tokens,
            "unit": unit,
            "scored": base.scored,
            "bootstrap": {"resamples": iv.resamples, "level": iv.level, "seed": iv.seed, "method": iv.method},
            "more_items_to_decide": decision.more_items,
        },
    )
