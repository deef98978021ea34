"""The `regression` gate (catastrophic forgetting): general ability and general-text perplexity must not
drop beyond a tolerance, decided by non-inferiority on paired intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.perplexity import PairedNLL
from gates.registry import GateContext, MeasureRequest, gate, probe_request
from gates.stats import bootstrap_mean, decide_non_inferiority, paired_bootstrap
from gates.types import Example, GateResult
from probes.results import NLLMeasurement, ProbeRun

_ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}


@dataclass(frozen=True)
class RegressionParams:
    data: str = field(
        default="builtin:general", metadata={"path": True, "help": "golden general prompts (probe suite)"}
    )
    text: str = field(default="builtin:general_text", metadata={"path": True, "help": "general text for PPL"})
    max_drop: float = field(default=0.05, metadata={"help": "tolerated drop of the pass rate (0.05 = 5 points)"})
    max_relative_increase: float = field(default=0.05, metadata={"help": "tolerated relative PPL increase"})
    n: int = field(default=1, metadata={"help": "samples per prompt (1 with greedy decoding)"})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy"})
    max_new_tokens: int = field(default=96, metadata={"help": "tokens generated per answer at most"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap intervals"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "bootstrap resamples"})
    batch_size: int = field(default=16, metadata={"help": "sequences generated together"})
    evidence: int = field(default=5, metadata={"help": "how many forgotten items to show"})

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.max_drop < 1:
            problems.append(("max_drop", "must be in [0, 1), e.g. 0.05"))
        if self.max_relative_increase < 0:
            problems.append(("max_relative_increase", "must be >= 0, e.g. 0.05"))
        if self.n < 1 or (self.temperature == 0 and self.n > 1):
            problems.append(("n", "must be >= 1, and 1 with temperature 0 (greedy)"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1"))
        if problems:
            raise ValueError(problems)


def _requests(p: RegressionParams) -> list[MeasureRequest]:
    probes = probe_request(
        p.data, n=p.n, temperature=p.temperature, max_new_tokens=p.max_new_tokens, seed=p.seed, batch_size=p.batch_size
    )
    return [probes, MeasureRequest("nll", p.text, (("max_length", 1024), ("batch_size", 8)))]


@gate("regression", params=RegressionParams, requests=_requests)
def regression(p: RegressionParams, ctx: GateContext) -> GateResult:
    """Pass-rate drop within `max_drop` and PPL increase within `max_relative_increase` (interval bounds)."""
    preq, treq = _requests(p)
    base: ProbeRun = ctx.get(preq, "base")
    cand: ProbeRun = ctx.get(preq, "candidate")
    rb = np.array([i.c / i.n for i in base.items])
    rc = np.array([i.c / i.n for i in cand.items])
    diff = rc - rb
    iv = bootstrap_mean(diff, resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
    d_rate = decide_non_inferiority(iv, -p.max_drop)

    tb: NLLMeasurement = ctx.get(treq, "base")
    tc: NLLMeasurement = ctx.get(treq, "candidate")
    pair = PairedNLL.of(tb, tc)
    iv_ppl = paired_bootstrap(
        lambda idx: np.exp(pair.log_ppl_ratio(idx)) - 1,
        len(pair.nb),
        resamples=p.bootstrap_samples,
        level=p.confidence,
        seed=ctx.seed,
    )
    d_ppl = decide_non_inferiority(iv_ppl, p.max_relative_increase, higher_is_better=False)
    verdict = max(d_rate.verdict, d_ppl.verdict, key=_ORDER.__getitem__)

    rate = (
        f"General pass rate {rc.mean():.1%} vs base {rb.mean():.1%} on {len(diff)} prompts: change "
        f"{iv.point:+.1%} ({iv.level:.0%} CI {iv.lower:+.1%} to {iv.upper:+.1%}); tolerated drop "
        f"{p.max_drop:.0%} -> {d_rate.verdict}."
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
        tail = " An interval straddles its tolerance: more general prompts or text would decide it."
    else:
        tail = " Both intervals stay within their tolerances."
    forgotten = [j for j in np.argsort(diff, kind="stable") if diff[j] < 0][: p.evidence]
    evidence = tuple(
        Example(
            id=base.items[j].id,
            prompt=base.items[j].prompt,
            base_output=base.items[j].outputs[0],
            candidate_output=cand.items[j].outputs[0],
            base_score=float(rb[j]),
            candidate_score=float(rc[j]),
            note=cand.items[j].details[0] or "forgotten",
        )
        for j in forgotten
    )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric="general pass-rate change (candidate - base)",
        required=ctx.required,
        baseline=round(float(rb.mean()), 6),
        candidate=round(float(rc.mean()), 6),
        delta=round(iv.point, 6),
        threshold=-p.max_drop,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        explanation=rate + ppl + tail,
        evidence=evidence,
        details={
            "pass_rate": {"verdict": d_rate.verdict, "more_items_to_decide": d_rate.more_items},
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
                "method": "paired bootstrap over items / documents",
            },
        },
    )
