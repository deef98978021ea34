"""The `calibration` gate: are the candidate's confidences still meaningful?

On items with a closed answer set (a label field such as the demo's severity, rows with their own `choices`, or an
lm-eval multiple-choice task) each variant gives each option a probability: the log-likelihood of the option as the
answer's continuation, normalised over the options (a softmax of the log-likelihoods). The prediction is the most
probable option and its probability is the confidence. Per variant: accuracy, the Brier score (sum over the options
of (p - 1[right])^2 per item, 0 best, 2 worst), the expected calibration error over equal-mass bins of confidence,
and the reliability diagram's points.

Decision: non-inferiority of the candidate's per-item Brier score against the base's on the same items (paired
bootstrap of the mean difference, candidate - base): pass when the interval's upper bound stays at or below
`max_brier_increase`, fail when its lower bound is above it. With `max_ece`, the candidate's ECE must also stay
under that ceiling: the check fails when the lower bound of its bootstrap interval is above it (confidently wrong
far more often than its confidence says) and is inconclusive when the interval straddles it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gates.benchmarks import lmeval_request
from gates.registry import GateContext, MeasureRequest, gate
from gates.stats import Interval, Power, bootstrap_draws, bootstrap_mean, decide_non_inferiority, power
from gates.types import Example, GateResult, Table
from probes.results import ChoiceItem, ChoiceRun, TaskSuiteRun


@dataclass(frozen=True)
class CalibrationParams:
    data: str = field(
        default="",
        metadata={"path": True, "help": "closed-answer items: JSONL rows (chat or text) with the right option"},
    )
    label: str = field(default="answer", metadata={"help": "the row field holding the right option"})
    options: list[str] = field(
        default_factory=list,
        metadata={"help": "the answer set; default: the row's `choices`, else every value `label` takes in data"},
    )
    answer_prefix: str = field(
        default="", metadata={"help": 'what the answer starts with before the option, e.g. {"severity": "'}
    )
    task: str = field(default="", metadata={"help": "an lm-eval multiple_choice task instead of data"})
    task_paths: list[str] = field(
        default_factory=list, metadata={"path": True, "help": "folders of your own lm-eval task YAMLs"}
    )
    num_fewshot: int = field(default=-1, metadata={"help": "lm-eval task: few-shot examples (-1: the task's own)"})
    limit: int = field(default=0, metadata={"help": "items (documents) measured; 0: all"})
    max_brier_increase: float = field(
        default=0.05, metadata={"help": "tolerated rise of the mean Brier score, candidate - base (CI upper bound)"}
    )
    max_ece: float | None = field(
        default=None, metadata={"help": "optional ceiling on the candidate's expected calibration error"}
    )
    bins: int = field(default=10, metadata={"help": "equal-mass confidence bins of the ECE and reliability diagram"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap intervals"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "paired bootstrap resamples over items"})
    batch_size: int = field(default=8, metadata={"help": "scored sequences per forward pass"})
    evidence: int = field(default=5, metadata={"help": "how many confidently wrong answers to show"})

    def __post_init__(self) -> None:
        problems = []
        if bool(self.data) == bool(self.task):
            problems.append(("data", 'set exactly one of data = "items.jsonl" and task = "LM_EVAL_TASK"'))
        if not 0 <= self.max_brier_increase < 2:
            problems.append(("max_brier_increase", "is a Brier-score difference: between 0 and 2, e.g. 0.02"))
        if self.max_ece is not None and not 0 < self.max_ece < 1:
            problems.append(("max_ece", "is a probability gap: between 0 and 1, e.g. 0.1"))
        if self.bins < 2:
            problems.append(("bins", "must be at least 2"))
        if not 0 < self.confidence < 1:
            problems.append(("confidence", "must be between 0 and 1, e.g. 0.95"))
        if self.bootstrap_samples < 100:
            problems.append(("bootstrap_samples", "must be at least 100"))
        if self.batch_size < 1:
            problems.append(("batch_size", "must be at least 1"))
        if self.limit < 0:
            problems.append(("limit", "must be >= 0 (0: every item)"))
        if len(set(self.options)) != len(self.options):
            problems.append(("options", "must not repeat an option"))
        if problems:
            raise ValueError(problems)


KEY = "[gates.calibration]"


def _requests(p: CalibrationParams) -> list[MeasureRequest]:
    if p.task:
        return [
            lmeval_request(
                [p.task],
                p.task_paths,
                limit=p.limit,
                num_fewshot=p.num_fewshot,
                seed=0,
                batch_size=p.batch_size,
                key=f"{KEY} task",
            )
        ]
    opts = (
        ("key", KEY),
        ("label", p.label),
        ("options", tuple(p.options)),
        ("answer_prefix", p.answer_prefix),
        ("limit", p.limit),
        ("batch_size", p.batch_size),
    )
    return [MeasureRequest("choices", p.data, opts)]


def _items(m: ChoiceRun | TaskSuiteRun, task: str) -> list[ChoiceItem]:
    if isinstance(m, ChoiceRun):
        return list(m.items)
    t = m.task(task)
    if t.output_type != "multiple_choice":
        raise ValueError(f"task {task!r} is {t.output_type}: calibration needs a multiple_choice task")
    return [
        ChoiceItem(f"{task}:{i.doc_id}", i.prompt, tuple(str(k) for k in range(len(i.logliks))), i.logliks, i.gold)
        for i in t.items
        if i.gold >= 0 and len(i.logliks) >= 2
    ]


@dataclass(frozen=True)
class Scored:
    """One variant's probabilities over the options of every item."""

    probs: list[np.ndarray]
    answer: np.ndarray  # right option per item
    pred: np.ndarray
    conf: np.ndarray  # probability of the prediction
    correct: np.ndarray  # 1.0 / 0.0
    brier: np.ndarray  # per item, sum over options of (p - y)^2

    @classmethod
    def of(cls, items: list[ChoiceItem]) -> Scored:
        probs = []
        for it in items:
            ll = np.asarray(it.logliks, dtype=float)
            e = np.exp(ll - ll.max())
            probs.append(e / e.sum())
        answer = np.array([it.answer for it in items])
        pred = np.array([int(np.argmax(p)) for p in probs])
        conf = np.array([float(p.max()) for p in probs])
        brier = np.array([float(((p - np.eye(len(p))[a]) ** 2).sum()) for p, a in zip(probs, answer, strict=True)])
        return cls(probs, answer, pred, conf, (pred == answer).astype(float), brier)


def equal_mass_bins(conf: np.ndarray, correct: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Items sorted by confidence, cut into `bins` groups of (nearly) equal size, items of equal confidence kept in
    one group (a cut inside a tie would split one stated confidence over two points): each group's confidence range,
    mean confidence, accuracy and size (the reliability diagram's points)."""
    order = np.argsort(conf, kind="stable")
    c, n = conf[order], len(conf)
    cuts = []
    for k in range(1, min(bins, n)):
        i = round(k * n / min(bins, n))
        while 0 < i < n and c[i] == c[i - 1]:
            i += 1
        if 0 < i < n and (not cuts or i > cuts[-1]):
            cuts.append(i)
    out = []
    for g in np.split(order, cuts):
        out.append(
            {
                "lo": float(conf[g].min()),
                "hi": float(conf[g].max()),
                "confidence": float(conf[g].mean()),
                "accuracy": float(correct[g].mean()),
                "items": int(len(g)),
            }
        )
    return out


def ece(conf: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """Expected calibration error: the item-weighted mean gap |accuracy - confidence| over equal-mass bins."""
    n = len(conf)
    return float(
        sum(b["items"] / n * abs(b["accuracy"] - b["confidence"]) for b in equal_mass_bins(conf, correct, bins))
    )


def _ece_interval(s: Scored, p: CalibrationParams, seed: int) -> Interval:
    n = len(s.conf)

    def stat(idx: np.ndarray) -> np.ndarray:
        return np.array([ece(s.conf[row], s.correct[row], p.bins) for row in idx])

    resamples = min(p.bootstrap_samples, 1000)  # a sort per resample: 1000 are plenty for a ceiling check
    draws = bootstrap_draws(stat, n, resamples=resamples, seed=seed)
    a = (1 - p.confidence) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return Interval(ece(s.conf, s.correct, p.bins), float(lo), float(hi), p.confidence, n, resamples, seed)


def _pair(ctx: GateContext, p: CalibrationParams) -> tuple[list[ChoiceItem], Scored, Scored]:
    req = _requests(p)[0]
    base, cand = (_items(ctx.get(req, v), p.task) for v in ("base", "candidate"))
    if [(i.id, i.options, i.answer) for i in base] != [(i.id, i.options, i.answer) for i in cand]:
        raise ValueError("base and candidate were scored on different items or options")
    if len(base) < 2:
        raise ValueError(f"calibration needs at least 2 items with a closed answer set, got {len(base)}")
    return base, Scored.of(base), Scored.of(cand)


PRIOR_BRIER_SD = 0.15  # per-item sd of the Brier change before anything is measured


def _power(p: CalibrationParams, ctx: GateContext) -> list[Power]:
    req = _requests(p)[0]
    b, c = ctx.find(req, "base"), ctx.find(req, "candidate")
    tol = p.max_brier_increase or None
    if b is not None and c is not None:
        try:
            _, sb, sc = _pair(ctx, p)
        except (ValueError, KeyError):
            return []
        return [power("Brier score change", len(sb.brier), float(np.std(sc.brier - sb.brier, ddof=1)), "paired", tol)]
    return [power("Brier score change", ctx.sizes.get(p.data, p.limit), PRIOR_BRIER_SD, "prior", tol, p.confidence)]


def _summary(s: Scored, bins: int) -> dict[str, float]:
    return {
        "accuracy": float(s.correct.mean()),
        "brier": float(s.brier.mean()),
        "ece": ece(s.conf, s.correct, bins),
        "mean_confidence": float(s.conf.mean()),
        "overconfidence": float(s.conf.mean() - s.correct.mean()),
    }


def _f(x: float) -> str:
    return f"{x:.3f}"


@gate("calibration", params=CalibrationParams, requests=_requests, power=lambda p, ctx: _power(p, ctx))
def calibration(p: CalibrationParams, ctx: GateContext) -> GateResult:
    """Candidate's per-item Brier score no worse than the base's by `max_brier_increase` (paired CI); optional ECE
    ceiling."""
    items, sb, sc = _pair(ctx, p)
    n = len(items)
    diff = sc.brier - sb.brier
    iv = bootstrap_mean(diff, resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
    decision = decide_non_inferiority(iv, p.max_brier_increase, higher_is_better=False)
    sum_b, sum_c = _summary(sb, p.bins), _summary(sc, p.bins)
    k = min(p.bins, n)
    ref = ctx.reference
    verdict, tail = decision.verdict, ""
    if verdict == "pass":
        tail = f" The interval's upper bound stays within the tolerated rise of {p.max_brier_increase:g}."
    elif verdict == "fail":
        tail = (
            f" The whole interval is above the tolerated rise of {p.max_brier_increase:g}: the candidate's "
            f"probabilities are worse than its {ref}'s on the same items. "
            + (
                "Its accuracy held, so its confidence, not its answers, moved: fine-tuning sharpened it. Temperature-"
                "scale the candidate on held-out items, or train with label smoothing or fewer steps."
                if sum_c["accuracy"] >= sum_b["accuracy"] - 0.02 and sum_c["overconfidence"] > sum_b["overconfidence"]
                else "See the confidently wrong answers below."
            )
        )
    else:
        more = f"about {decision.more_items} more items" if decision.more_items else "more items"
        tail = f" The interval straddles the tolerated rise; {more} would likely decide it."
    ece_iv = None
    if p.max_ece is not None:
        ece_iv = _ece_interval(sc, p, ctx.seed)
        ece_verdict = "fail" if ece_iv.lower > p.max_ece else "pass" if ece_iv.upper <= p.max_ece else "inconclusive"
        tail += (
            f" Candidate ECE {ece_iv.point:.3f} ({ece_iv.level:.0%} CI {ece_iv.lower:.3f} to {ece_iv.upper:.3f}) "
            f"against the ceiling max_ece = {p.max_ece:g}: {ece_verdict}."
        )
        if ece_verdict == "fail":
            verdict = "fail"
        elif ece_verdict == "inconclusive" and verdict == "pass":
            verdict = "inconclusive"
    head = (
        f"Brier score {sum_c['brier']:.3f} vs {ref} {sum_b['brier']:.3f} on {n} items ({len(items[0].options)} options "
        f"each{'' if p.task else ', label ' + repr(p.label)}): change {iv.point:+.4f} ({iv.level:.0%} CI "
        f"{iv.lower:+.4f} to {iv.upper:+.4f}). Accuracy {sum_b['accuracy']:.1%} -> {sum_c['accuracy']:.1%}; ECE "
        f"({k} equal-mass bins) {sum_b['ece']:.3f} -> {sum_c['ece']:.3f}; mean confidence "
        f"{sum_b['mean_confidence']:.1%} -> {sum_c['mean_confidence']:.1%}."
    )
    all_wrong = [i for i in np.argsort(-sc.conf, kind="stable") if not sc.correct[i]]
    wrong = all_wrong[: p.evidence]
    evidence = tuple(
        Example(
            id=items[i].id,
            prompt=items[i].prompt,
            base_output=f"{items[i].options[sb.pred[i]]} ({sb.conf[i]:.0%})",
            candidate_output=f"{items[i].options[sc.pred[i]]} ({sc.conf[i]:.0%})",
            base_score=round(float(sb.brier[i]), 4),
            candidate_score=round(float(sc.brier[i]), 4),
            note=f"right: {items[i].options[items[i].answer]}; Brier {ref} -> candidate",
        )
        for i in wrong
    )
    rel = {
        "base": equal_mass_bins(sb.conf, sb.correct, p.bins),
        "candidate": equal_mass_bins(sc.conf, sc.correct, p.bins),
    }
    tables = (
        Table(
            "Calibration of each variant",
            ("variant", "accuracy", "Brier", f"ECE ({k} bins)", "mean confidence", "confidence - accuracy"),
            tuple(
                (
                    v,
                    f"{s['accuracy']:.1%}",
                    _f(s["brier"]),
                    _f(s["ece"]),
                    f"{s['mean_confidence']:.1%}",
                    _f(s["overconfidence"]),
                )
                for v, s in ((ref, sum_b), ("candidate", sum_c))
            ),
        ),
        Table(
            "Reliability diagram (equal-mass bins: the confidence each variant states vs how often it is right)",
            ("variant", "bin", "confidence range", "mean confidence", "accuracy", "items"),
            tuple(
                (
                    ref if v == "base" else v,
                    str(j + 1),
                    f"{b['lo']:.2f}–{b['hi']:.2f}",
                    f"{b['confidence']:.2f}",
                    f"{b['accuracy']:.2f}",
                    str(b["items"]),
                )
                for v, bs in rel.items()
                for j, b in enumerate(bs)
            ),
        ),
    )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric=f"Brier score change (candidate - {ref})",
        baseline=round(sum_b["brier"], 6),
        candidate=round(sum_c["brier"], 6),
        delta=round(iv.point, 6),
        threshold=p.max_brier_increase,
        ci=(round(iv.lower, 6), round(iv.upper, 6)),
        required=ctx.required,
        explanation=head + tail,
        evidence=evidence,
        evidence_total=len(all_wrong),
        details={
            "items": n,
            "bins": k,
            "base": sum_b,
            "candidate": sum_c,
            "reliability": rel,
            "ece_interval": None if ece_iv is None else [ece_iv.lower, ece_iv.upper],
            "bootstrap": {"resamples": iv.resamples, "level": iv.level, "seed": iv.seed, "method": iv.method},
            "more_items_to_decide": decision.more_items,
        },
        tables=tables,
    )
