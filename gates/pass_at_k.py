"""The `pass_at_k` gate: does the candidate do the domain's job (checkable probes) better than its base?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.benchmarks import as_probe_run, lmeval_request
from gates.registry import GateContext, MeasureRequest, gate, probe_request
from gates.stats import Power, bootstrap_mean, decide_superiority, mcnemar_exact, rate_power
from gates.types import Example, GateResult
from probes.passk import pass_at_k as _pass_at_k
from probes.passk import pass_hat_k
from probes.results import ProbeRun, TaskSuiteRun


@dataclass(frozen=True)
class PassAtKParams:
    data: str = field(
        default="",
        metadata={"path": True, "help": "probe suite (JSONL with check specs, HumanEval problems, builtin:humaneval)"},
    )
    task: str = field(
        default="",
        metadata={
            "help": "instead of `data`: an lm-eval generate_until task (its metric checks each answer; pass@1 "
            "under the task's own generation settings, so k, n, temperature, top_p, max_new_tokens do not apply)"
        },
    )
    task_paths: list[str] = field(
        default_factory=list, metadata={"path": True, "help": "folders (or files) of your own lm-eval task YAMLs"}
    )
    limit: int = field(default=0, metadata={"help": "documents of the task at most (0: all)"})
    num_fewshot: int = field(default=-1, metadata={"help": "few-shot examples per task prompt (-1: the task's)"})
    k: int = field(default=1, metadata={"help": "pass@k's k (needs n >= k)"})
    n: int = field(default=5, metadata={"help": "samples per item"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature (0: greedy)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling"})
    max_new_tokens: int = field(default=128, metadata={"help": "tokens generated per sample at most"})
    stop: list[str] = field(default_factory=list, metadata={"help": "stop sequences (the answer ends before them)"})
    seed: int = field(default=0, metadata={"help": "sampling seed (recorded)"})
    margin: float = field(
        default=0.0,
        metadata={"help": "required pass@k gain (CI lower bound must exceed it); negative = non-inferiority"},
    )
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap interval"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "bootstrap resamples over items"})
    batch_size: int = field(default=64, metadata={"help": "sequences generated together"})
    evidence: int = field(default=5, metadata={"help": "how many regressed items to show"})

    def __post_init__(self) -> None:
        problems = []
        if bool(self.data) == bool(self.task):
            problems.append(("data", "name the probes: either data (a probe suite) or task (an lm-eval task)"))
        if self.task and self.k != 1:
            problems.append(("k", "must be 1 with task: lm-eval scores one answer per document"))
        if self.limit < 0 or self.num_fewshot < -1:
            problems.append(("limit", "limit must be >= 0 and num_fewshot >= -1"))
        if self.k < 1:
            problems.append(("k", "must be at least 1"))
        if self.n < self.k:
            problems.append(("n", f"must be >= k={self.k}: pass@k is undefined with fewer samples than k"))
        if self.temperature == 0 and self.n > 1:
            problems.append(("temperature", "is 0 (greedy), so all n samples would be identical; set n = 1"))
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            problems.append(("temperature", "must be >= 0, and top_p in (0, 1]"))
        if self.max_new_tokens < 1 or self.batch_size < 1:
            problems.append(("max_new_tokens", "and batch_size must be at least 1"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1, e.g. 0.95"))
        if problems:
            raise ValueError(problems)


def _requests(p: PassAtKParams) -> list[MeasureRequest]:
    if p.task:
        return [
            lmeval_request(
                [p.task],
                p.task_paths,
                limit=p.limit,
                num_fewshot=p.num_fewshot,
                seed=p.seed,
                batch_size=p.batch_size,
                key="[gates.pass_at_k] task",
            )
        ]
    return [
        probe_request(
            p.data,
            n=p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_new_tokens=p.max_new_tokens,
            stop=tuple(p.stop),
            seed=p.seed,
            batch_size=p.batch_size,
        )
    ]


def _power(p: PassAtKParams, ctx: GateContext) -> list[Power]:
    """The smallest pass@k gain (above `margin`) the paired interval can show."""
    req = _requests(p)[0]
    vals = [_run(p, ctx.find(req, v)) for v in ("base", "candidate")]
    arr = [None if m is None else np.array([_pass_at_k(i.n, i.c, p.k) for i in m.items]) for m in vals]
    n = ctx.sizes.get(p.data, 0) or next((len(m.items) for m in vals if m is not None), 0)
    return [rate_power(f"pass@{p.k}", n, arr[0], arr[1], None, p.confidence)]


def _run(p: PassAtKParams, m: ProbeRun | TaskSuiteRun | None) -> ProbeRun | None:
    """The probe run a measurement is (an lm-eval task's documents as items answered once each)."""
    return as_probe_run(m, p.task.split(":", 1)[0]) if p.task and m is not None else m


@gate("pass_at_k", params=PassAtKParams, requests=_requests, power=lambda p, ctx: _power(p, ctx))
def pass_at_k(p: PassAtKParams, ctx: GateContext) -> GateResult:
    """Candidate pass@k above base pass@k by `margin`, decided on a paired bootstrap over items."""
    req = _requests(p)[0]
    base: ProbeRun = _run(p, ctx.get(req, "base"))
    cand: ProbeRun = _run(p, ctx.get(req, "candidate"))
    if [i.id for i in base.items] != [i.id for i in cand.items]:
        raise ValueError("base and candidate were probed on different items")
    pb = np.array([_pass_at_k(i.n, i.c, p.k) for i in base.items])
    pc = np.array([_pass_at_k(i.n, i.c, p.k) for i in cand.items])
    diff = pc - pb  # samples are nested in items: resampling items is the clustered bootstrap

    iv = bootstrap_mean(diff, resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
    decision = decide_superiority(iv, p.margin)
    # paired pass/fail, reported beside the interval: one draw of the pass@k event per item
    first_k = [np.array([any(i.passed[: p.k]) for i in r.items]) for r in (base, cand)]
    mc = mcnemar_exact(first_k[0], first_k[1])
    conform_b = float(np.mean([x for i in base.items for x in i.parsed]))
    conform_c = float(np.mean([x for i in cand.items for x in i.parsed]))
    ref = ctx.reference
    head = (
        f"pass@{p.k} {pc.mean():.3f} for the candidate vs {pb.mean():.3f} for the {ref} over {len(diff)} items "
        f"(n={p.n} samples each): gain {iv.point:+.3f} ({iv.level:.0%} CI {iv.lower:+.3f} to {iv.upper:+.3f}); "
        f"required > {p.margin:+.3f}. Format conformance {conform_b:.0%} -> {conform_c:.0%}. "
        f"{mc.describe()} (any of the first {p.k} sample(s) passed, per item)."
    )
    if p.task:
        head = head.replace(f"(n={p.n} samples each)", "(one answer each, lm-eval's generation settings)")
        head = f"lm-eval task {p.task}: " + head
    if decision.verdict == "pass":
        tail = " The interval's lower bound clears the requirement."
    elif decision.verdict == "fail":
        tail = (
            " The whole interval is at or below the requirement: the candidate does not do the probed job "
            f"better than its {ref}. See the items it fails below."
        )
    else:
        more = f"about {decision.more_items} more items" if decision.more_items else "more items"
        tail = f" The interval straddles the requirement; {more} (or a larger n) would likely decide it."
    regressed = [j for j in np.argsort(diff, kind="stable") if diff[j] < 0]
    worst = regressed[: p.evidence]
    evidence = []
    for j in worst:
        b, c = base.items[j], cand.items[j]
        bad = next((o for o, ok in zip(c.outputs, c.passed, strict=True) if not ok), c.outputs[0])
        good = next((o for o, ok in zip(b.outputs, b.passed, strict=True) if ok), b.outputs[0])
        detail = next((d for d, ok in zip(c.details, c.passed, strict=True) if not ok and d), "")
        evidence.append(
            Example(
                id=b.id,
                prompt=b.prompt,
                base_output=good,
                candidate_output=bad,
                base_score=round(float(pb[j]), 4),
                candidate_score=round(float(pc[j]), 4),
                note=f"{ref} passed {b.c}/{b.n}, candidate {c.c}/{c.n}" + (f"; {detail}" if detail else ""),
            )
        )
    return GateResult(
        name=ctx.name,
        verdict=decision.verdict,
        metric=f"pass@{p.k} gain (candidate - {ref})",
        required=ctx.required,
        baseline=round(float(pb.mean()), 6),
        candidate=round(float(pc.mean()), 6),
        delta=round(iv.point, 6),
        threshold=p.margin,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        explanation=head + tail,
        evidence=tuple(evidence),
        evidence_total=len(regressed),
        details={
            "k": p.k,
            "n": 1 if p.task else p.n,
            "items": len(diff),
            f"base_pass^{p.k}": round(float(np.mean([pass_hat_k(i.n, i.c, p.k) for i in base.items])), 6),
            f"candidate_pass^{p.k}": round(float(np.mean([pass_hat_k(i.n, i.c, p.k) for i in cand.items])), 6),
            "base_format_conformance": round(conform_b, 6),
            "candidate_format_conformance": round(conform_c, 6),
            "sampling": {"lm_eval_task": p.task, "generation": "the task's generation_kwargs"}
            if p.task
            else {
                "temperature": p.temperature,
                "top_p": p.top_p,
                "max_new_tokens": p.max_new_tokens,
                "seed": p.seed,
            },
            "bootstrap": {
                "resamples": iv.resamples,
                "level": iv.level,
                "seed": iv.seed,
                "method": "paired bootstrap over items (clustered: samples nested in items)",
            },
            "more_items_to_decide": decision.more_items,
            "mcnemar": {
                "lost": mc.lost,
                "gained": mc.gained,
                "p_value": round(mc.p_value, 6),
                "per_item": f"any of the first k={p.k} samples passed (one draw of the pass@k event); reported only",
            },
        },
    )
