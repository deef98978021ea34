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

from gates.benchmarks import TaskDecision, decide_tasks, lmeval_request
from gates.perplexity import PRIOR_PPL_SD, PairedNLL
from gates.registry import GateContext, MeasureRequest, Sequential, gate, probe_request
from gates.stats import (
    PRIOR_RATE_SD,
    Interval,
    Power,
    bootstrap_mean,
    decide_non_inferiority,
    look_levels,
    look_sizes,
    look_slices,
    mcnemar_exact,
    paired_bootstrap,
    power,
)
from gates.types import Example, GateResult, Table
from probes.results import NLLMeasurement, TaskSuiteRun

_ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}
# paired sd of the per-token reference probability's change before anything is measured: on the embedded model
# a small-noise adapter measured 0.0018 and a 12-step narrow fine-tune on every linear layer 0.12
PRIOR_LIKELIHOOD_SD = 0.15
SCORES = ("likelihood", "samples", "greedy")


@dataclass(frozen=True)
class RegressionParams:
    data: str = field(
        default="",
        metadata={
            "path": True,
            "help": "general prompts: probe suite rows with a `completion` (reference answer); default "
            "builtin:general, or none when `tasks` are given",
        },
    )
    text: str = field(
        default="builtin:general_text", metadata={"path": True, "help": 'general text for PPL ("": none)'}
    )
    text_items: int = field(
        default=60,
        metadata={"help": "paragraphs of text scored per look, more at each further look (0: all at once)"},
    )
    tasks: list[str] = field(
        default_factory=list,
        metadata={"help": 'lm-eval tasks, "name" or "name:metric" (needs the lmeval extra), e.g. ["arc_easy"]'},
    )
    task_paths: list[str] = field(
        default_factory=list, metadata={"path": True, "help": "folders (or files) of your own lm-eval task YAMLs"}
    )
    limit: int = field(default=0, metadata={"help": "documents per lm-eval task at most (0: all)"})
    num_fewshot: int = field(default=-1, metadata={"help": "few-shot examples per lm-eval prompt (-1: the task's)"})
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
    batch_size: int = field(default=64, metadata={"help": "sequences generated or scored together"})
    evidence: int = field(default=5, metadata={"help": "how many forgotten items to show"})

    @property
    def suite(self) -> str:
        """The general prompt suite, if any: `data`, else builtin:general unless lm-eval tasks replace it."""
        return self.data or ("" if self.tasks else "builtin:general")

    def __post_init__(self) -> None:
        problems = []
        if not (self.suite or self.text or self.tasks):
            problems.append(("data", "the gate measures nothing: set data, text or tasks"))
        if any(not isinstance(t, str) or not t.split(":", 1)[0].strip() for t in self.tasks):
            problems.append(("tasks", 'must be task names, e.g. ["arc_easy", "hellaswag:acc_norm"]'))
        if self.limit < 0:
            problems.append(("limit", "must be >= 0 (0: every document)"))
        if self.num_fewshot < -1:
            problems.append(("num_fewshot", "must be >= 0, or -1 for the task's own default"))
        if self.score not in SCORES:
            problems.append(("score", f"must be one of {', '.join(SCORES)}"))
        if not 0 <= self.max_drop < 1:
            problems.append(("max_drop", "must be in [0, 1), e.g. 0.05"))
        if self.max_relative_increase < 0:
            problems.append(("max_relative_increase", "must be >= 0, e.g. 0.05"))
        if self.items < 0 or self.max_items < 0:
            problems.append(("items", "items and max_items must be >= 0 (0: the whole suite / one look)"))
        if self.text_items < 0:
            problems.append(("text_items", "must be >= 0 (0: the whole text at the first look)"))
        if self.score == "samples" and (self.n < 2 or self.temperature <= 0):
            problems.append(("n", "score = 'samples' needs n >= 2 and temperature > 0"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1"))
        if problems:
            raise ValueError(problems)


def _score_requests(p: RegressionParams, n: int) -> list[MeasureRequest]:
    if not p.suite:
        return []
    out = []
    for sl in look_slices(p.items, n) if n > 0 else [None]:
        extra = (("items", sl),) if sl is not None else ()
        if p.score == "likelihood":
            out.append(MeasureRequest("nll", p.suite, (("max_length", 1024), ("batch_size", p.batch_size), *extra)))
        else:
            samples = p.score == "samples"
            req = probe_request(
                p.suite,
                n=p.n if samples else 1,
                temperature=p.temperature if samples else 0.0,
                max_new_tokens=p.max_new_tokens,
                seed=p.seed,
                batch_size=p.batch_size,
            )
            out.append(MeasureRequest(req.kind, req.data, req.options + extra))
    return out


def _text_requests(p: RegressionParams, n: int = 0) -> list[MeasureRequest]:
    """The general text's PPL requests at the look that has measured `n` suite items: `text_items` paragraphs per
    look so far (each slice cached on its own), or the whole text in one piece."""
    if not p.text:
        return []
    opts = (("max_length", 1024), ("batch_size", 8))
    looks = len(look_slices(p.items, n)) if n > 0 and p.items > 0 and p.suite else 0
    if not (p.text_items and looks):
        return [MeasureRequest("nll", p.text, opts)]
    return [
        MeasureRequest("nll", p.text, (*opts, ("items", sl))) for sl in look_slices(p.text_items, looks * p.text_items)
    ]


def _text(p: RegressionParams, ctx: GateContext, variant: str, *, partial: bool = False) -> NLLMeasurement | None:
    """The general text's per-paragraph NLL over every planned slice (with `partial`: the slices measured so far for
    both models, so the two stay paired, as `_scores` does)."""
    reqs = [r for r in (ctx.requests or tuple(_text_requests(p))) if r.kind == "nll" and r.data == p.text]
    if partial:
        reqs = [r for r in reqs if all(ctx.find(r, v) is not None for v in ("base", "candidate"))]
    got = [ctx.find(r, variant) if partial else ctx.get(r, variant) for r in reqs]
    got = [m for m in got if m is not None]
    if not got:
        return None
    return NLLMeasurement(tuple(d for m in got for d in m.docs), got[0].max_length, got[0].scored)


def task_request(p: RegressionParams) -> MeasureRequest:
    return lmeval_request(
        p.tasks, p.task_paths, limit=p.limit, num_fewshot=p.num_fewshot, seed=p.seed, batch_size=p.batch_size
    )


def _requests_for(p: RegressionParams, n: int) -> list[MeasureRequest]:
    return [
        *_score_requests(p, n),
        *_text_requests(p, n),
        *([task_request(p)] if p.tasks else []),
    ]


def _requests(p: RegressionParams) -> list[MeasureRequest]:
    return _requests_for(p, 0)  # whole suite in one piece; the pipeline plans the looks (`SEQUENTIAL`)


SEQUENTIAL = Sequential(
    data=lambda p: ("nll" if p.score == "likelihood" else "probes", p.suite) if p.suite else None,
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
    reqs = [
        r
        for r in (ctx.requests or tuple(_score_requests(p, 0)))
        if r.data == p.suite and r.kind != "lmeval" and not (r.kind == "nll" and r.data == p.text)
    ]
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


@dataclass(frozen=True)
class _Part:
    """One of the gate's comparisons: the general suite, the general-text PPL, or the lm-eval tasks."""

    verdict: str
    sentence: str
    more_items: int | None = None
    evidence: tuple[Example, ...] = ()
    details: dict = field(default_factory=dict)
    evidence_total: int = 0  # the items that qualified for `evidence` (it shows the worst of them)


def _suite_part(p: RegressionParams, ctx: GateContext, level: float) -> tuple[_Part, Interval, _Scores]:
    s = _scores(p, ctx)
    diff = s.cand - s.base
    iv = bootstrap_mean(diff, resamples=p.bootstrap_samples, level=level, seed=ctx.seed)
    d = decide_non_inferiority(iv, -p.max_drop)
    what = _WHAT[p.score]
    mc = mcnemar_exact(*s.passed) if s.passed is not None else None
    looks = (
        f" Look {ctx.look + 1} of {len(ctx.looks)} ({len(diff)} of at most {ctx.looks[-1]} prompts; "
        f"{level:.2%} interval so that all looks together keep {p.confidence:.0%})."
        if len(ctx.looks) > 1
        else ""
    )
    sentence = (
        f"General {what} {s.cand.mean():.1%} vs {ctx.reference} {s.base.mean():.1%} on {len(diff)} prompts: change "
        f"{iv.point:+.1%} ({level:.0%} CI {iv.lower:+.1%} to {iv.upper:+.1%}); tolerated drop "
        f"{p.max_drop:.0%} -> {d.verdict}." + (f" {mc.describe()}." if mc else "") + looks
    )
    dropped = [j for j in np.argsort(diff, kind="stable") if diff[j] < 0]
    forgotten = dropped[: p.evidence]
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
    details = {
        "score": p.score,
        "items": len(diff),
        "sd_paired": round(float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, 6),
        "pass_rate": {"verdict": d.verdict, "more_items_to_decide": d.more_items},
        **({"mcnemar": {"lost": mc.lost, "gained": mc.gained, "p_value": mc.p_value}} if mc else {}),
        "sequential": {
            "looks": list(ctx.looks),
            "look": ctx.look + 1,
            "level": level,
            "spending": "Lan-DeMets O'Brien-Fleming-type, union bound over looks",
        },
    }
    return _Part(d.verdict, sentence, d.more_items, evidence, details, len(dropped)), iv, s


def _ppl_part(p: RegressionParams, ctx: GateContext, level: float) -> _Part:
    tb, tc = _text(p, ctx, "base"), _text(p, ctx, "candidate")
    if tb is None or tc is None:
        raise LookupError("the general text was not measured for both models")
    pair = PairedNLL.of(tb, tc)
    iv = paired_bootstrap(
        lambda idx: np.exp(pair.log_ppl_ratio(idx)) - 1,
        len(pair.nb),
        resamples=p.bootstrap_samples,
        level=level,
        seed=ctx.seed,
    )
    d = decide_non_inferiority(iv, p.max_relative_increase, higher_is_better=False)
    sentence = (
        f"General-text PPL {tc.perplexity:.3f} vs {tb.perplexity:.3f} (bits per byte {tc.bits_per_byte:.4f} vs "
        f"{tb.bits_per_byte:.4f}): {iv.point:+.1%} ({iv.lower:+.1%} to {iv.upper:+.1%}); "
        f"tolerated increase {p.max_relative_increase:.0%} -> {d.verdict}."
    )
    details = {
        "base": round(tb.perplexity, 6),
        "candidate": round(tc.perplexity, 6),
        "relative_increase": round(iv.point, 6),
        "ci": [round(iv.lower, 6), round(iv.upper, 6)],
        "threshold": p.max_relative_increase,
        "verdict": d.verdict,
        "base_bits_per_byte": round(tb.bits_per_byte, 6),
        "candidate_bits_per_byte": round(tc.bits_per_byte, 6),
    }
    return _Part(d.verdict, sentence, d.more_items, (), details)


def _tasks_part(p: RegressionParams, ctx: GateContext) -> tuple[_Part, list[TaskDecision], Table]:
    req = task_request(p)
    base: TaskSuiteRun = ctx.get(req, "base")
    cand: TaskSuiteRun = ctx.get(req, "candidate")
    ds = decide_tasks(
        base,
        cand,
        max_drop=p.max_drop,
        confidence=p.confidence,
        resamples=p.bootstrap_samples,
        seed=ctx.seed,
        evidence=p.evidence,
    )
    verdict = max((d.verdict for d in ds), key=_ORDER.__getitem__)
    m = len(ds)
    per = "; ".join(
        f"{d.name} {d.metric} {d.base:.1%} -> {d.candidate:.1%} on {d.items} documents ({d.delta:+.1%}, "
        f"CI {d.ci.lower:+.1%} to {d.ci.upper:+.1%}; {d.lost} lost / {d.gained} gained"
        + (f", McNemar p = {d.mcnemar_p:.3g}" if d.mcnemar_p is not None else "")
        + f") -> {d.verdict}"
        for d in ds
    )
    sentence = f"lm-eval {'task' if m == 1 else f'tasks (Holm over {m}, {p.confidence:.0%} family-wise)'}: {per}."
    more = [d.more_items for d in ds if d.more_items]
    evidence, dropped = [], 0
    for d in ds:
        bt, ct = base.task(d.name), cand.task(d.name)
        dropped += sum(c.score < b.score for b, c in zip(bt.items, ct.items, strict=False))
        for j in d.worst:
            bi, ci = bt.items[j], ct.items[j]
            evidence.append(
                Example(
                    id=f"{d.name}:{bi.doc_id}",
                    prompt=bi.prompt,
                    base_output=bi.response,
                    candidate_output=ci.response,
                    base_score=bi.score,
                    candidate_score=ci.score,
                    note=f"target {bi.target!r}; {d.metric} {bi.score:g} -> {ci.score:g}",
                )
            )
    table = Table(
        f"lm-eval tasks (paired on the same documents; Holm over {m} task{'s' if m != 1 else ''})",
        (
            "task",
            "metric",
            "documents",
            ctx.reference,
            "candidate",
            "change",
            "CI",
            "lost / gained",
            "McNemar p",
            "Holm p (drop >= tolerance)",
            "verdict",
        ),
        tuple(
            (
                f"`{d.name}`",
                d.metric,
                str(d.items),
                f"{d.base:.1%}",
                f"{d.candidate:.1%}",
                f"{d.delta:+.1%}",
                f"{d.ci.lower:+.1%} to {d.ci.upper:+.1%} ({d.ci.level:.1%})",
                f"{d.lost} / {d.gained}",
                f"{d.mcnemar_p:.3g}" if d.mcnemar_p is not None else "–",
                f"{d.p_drop:.3g}" if d.p_drop > 0 else f"< {1 / p.bootstrap_samples:.2g}",
                d.verdict + (f" (~{d.more_items} more documents)" if d.more_items else ""),
            )
            for d in ds
        ),
    )
    details = {
        "correction": f"Holm over {m} tasks, one-sided {(1 - p.confidence) / 2:g} each way",
        "lm_eval_version": base.lm_eval_version,
        "tasks": [
            {
                "name": d.name,
                "metric": d.metric,
                "items": d.items,
                "base": round(d.base, 6),
                "candidate": round(d.candidate, 6),
                "delta": round(d.delta, 6),
                "ci": [round(d.ci.lower, 6), round(d.ci.upper, 6)],
                "level": d.ci.level,
                "lost": d.lost,
                "gained": d.gained,
                "mcnemar_p": d.mcnemar_p,
                "holm_p_drop": d.p_drop,
                "holm_p_within": d.p_within,
                "verdict": d.verdict,
                "more_items_to_decide": d.more_items,
                "lm_eval_base": d.lm_eval_base,
                "lm_eval_candidate": d.lm_eval_candidate,
            }
            for d in ds
        ],
    }
    part = _Part(verdict, sentence, max(more) if more else None, tuple(evidence), details, dropped)
    return part, ds, table


@gate(
    "regression",
    params=RegressionParams,
    requests=_requests,
    sequential=SEQUENTIAL,
    power=lambda p, ctx: _power(p, ctx),
)
def regression(p: RegressionParams, ctx: GateContext) -> GateResult:
    """General score drop within `max_drop`, PPL increase within `max_relative_increase` and, per lm-eval task,
    accuracy drop within `max_drop` (interval bounds; Holm over tasks)."""
    levels = look_levels(ctx.looks, p.confidence) if ctx.looks else (p.confidence,)
    level = levels[min(ctx.look, len(levels) - 1)]
    parts: list[_Part] = []
    details: dict = {}
    tables: tuple[Table, ...] = ()
    headline = None
    if p.suite:
        suite, iv, s = _suite_part(p, ctx, level)
        parts.append(suite)
        details.update(suite.details)
        what = _WHAT[p.score]
        headline = (
            f"general {what} change (candidate - {ctx.reference})",
            float(s.base.mean()),
            float(s.cand.mean()),
            iv,
        )
    if p.text:
        ppl = _ppl_part(p, ctx, level)
        parts.append(ppl)
        details["perplexity"] = ppl.details
    if p.tasks:
        tasks, ds, table = _tasks_part(p, ctx)
        parts.append(tasks)
        details["lm_eval"] = tasks.details
        tables = (table,)
        if headline is None:  # the worst task leads the gate's row
            w = min(ds, key=lambda d: (_ORDER[d.verdict] * -1, d.ci.lower))
            headline = (f"{w.name} {w.metric} change (candidate - {ctx.reference})", w.base, w.candidate, w.ci)
    verdict = max((x.verdict for x in parts), key=_ORDER.__getitem__)
    if verdict == "fail":
        tail = (
            " The candidate forgot general ability: mix general data into training (replay), lower the "
            "learning rate or the number of epochs, or lower the LoRA rank."
        )
    elif verdict == "inconclusive":
        more = [x.more_items for x in parts if x.more_items]
        budget = " The item budget (max_items) ran out." if len(ctx.looks) > 1 and ctx.final_look else ""
        tail = (
            " An interval straddles its tolerance"
            + (f": about {max(more)} more prompts or documents would likely decide it." if more else ".")
            + budget
        )
    else:
        tail = " Every interval stays within its tolerance."
    details["bootstrap"] = {
        "resamples": p.bootstrap_samples,
        "level": level,
        "seed": ctx.seed,
        "method": "paired bootstrap over items (clustered: a prompt's samples stay together) / documents",
    }
    if headline is None:  # text PPL only
        pd = details["perplexity"]
        headline = ("general-text PPL relative increase", pd["base"], pd["candidate"], None)
        threshold, delta, ci = p.max_relative_increase, pd["relative_increase"], tuple(pd["ci"])
    else:
        threshold, delta, ci = -p.max_drop, headline[3].point, (headline[3].lower, headline[3].upper)
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric=headline[0],
        required=ctx.required,
        baseline=round(headline[1], 6),
        candidate=round(headline[2], 6),
        delta=round(delta, 6),
        threshold=threshold,
        ci=(round(ci[0], 6), round(ci[1], 6)),
        explanation=" ".join(x.sentence for x in parts) + tail,
        evidence=tuple(e for x in parts for e in x.evidence),
        evidence_total=sum(x.evidence_total for x in parts),
        details=details,
        tables=tables,
    )


def _power(p: RegressionParams, ctx: GateContext) -> list[Power]:
    """What the general-score and text-PPL intervals can resolve, from the best variance estimate at hand."""
    n = ctx.looks[-1] if ctx.looks else 0
    out = []
    if p.tasks:
        req = task_request(p)
        tb, tc = ctx.find(req, "base"), ctx.find(req, "candidate")
        if tb is not None and tc is not None:
            for t in tb.tasks:
                try:
                    d = np.array([i.score for i in tc.task(t.name).items]) - np.array([i.score for i in t.items])
                except (StopIteration, ValueError):
                    continue
                sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
                out.append(power(f"{t.name} {t.metric}", len(d), sd, "paired", p.max_drop, p.confidence))
    if not p.suite:
        return out + _ppl_power(p, ctx)
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
    return out + _ppl_power(p, ctx)


def _ppl_power(p: RegressionParams, ctx: GateContext) -> list[Power]:
    if not p.text:
        return []
    out = []
    tb, tc = _text(p, ctx, "base", partial=True), _text(p, ctx, "candidate", partial=True)
    size = ctx.sizes.get(p.text) or (len(tb.docs) if tb is not None else 0)
    last = [r for r in _text_requests(p, ctx.looks[-1] if ctx.looks else 0) if r.kind == "nll"]
    planned = dict(last[-1].options).get("items", (0, size))[1] if last else size  # paragraphs at the last look
    docs = min(size, planned) if size else planned
    if tb is not None and tc is not None and len(tb.docs) == len(tc.docs) > 1:
        pair = PairedNLL.of(tb, tc)
        rel = np.exp(pair.nc / pair.uc - pair.nb / pair.ub) - 1
        sd = float(rel.std(ddof=1))
        out.append(power("general-text PPL", docs or len(rel), sd, "paired", p.max_relative_increase, p.confidence))
    else:
        out.append(power("general-text PPL", docs, PRIOR_PPL_SD, "prior", p.max_relative_increase, p.confidence))
    return out
