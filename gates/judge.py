"""The `judge` gate: a blind judge compares base and candidate answers in both orders; the candidate's win
rate `(win + 0.5 tie) / n` must have its CI lower bound at or above `min_win_rate`, and every rubric axis
must be non-inferior to the base within `rubric_tolerance`. The report also shows how far to trust the
judge: swap consistency, tie rate, position and length bias, parse failures. A judge below the floors
(`min_swap_consistency`, `max_position_bias`, `max_tie_rate`, measured on the prompts whose two answers differ)
cannot discriminate, and the gate is `inconclusive` whatever the win rate: no pass on no information."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gates.registry import GateContext, MeasureRequest, gate
from gates.stats import bootstrap_mean, decide_non_inferiority
from gates.types import Example, GateResult, Table
from harness.core.paths import EMBEDDED_ALIAS
from judges.results import JudgeRun, JudgeSpec, PairJudgement

_ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}
DEFAULT_AXES = ["correctness", "helpfulness", "faithfulness", "tone", "format"]


@dataclass(frozen=True)
class JudgeParams:
    data: str = field(
        default="builtin:judge_general", metadata={"path": True, "help": "prompts to answer and judge (JSONL)"}
    )
    backend: str = field(default="hf", metadata={"help": "hf (local transformers judge) or openai (any endpoint)"})
    model: str = field(default=EMBEDDED_ALIAS, metadata={"help": "judge model: alias/dir for hf, name for openai"})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint, e.g. http://h:8000/v1"})
    api_key_env: str | None = field(default=None, metadata={"help": "environment variable holding the API key"})
    logprobs: bool | None = field(
        default=None, metadata={"help": "read choices from logprobs (default: yes for hf, no for openai)"}
    )
    timeout: float = field(default=60.0, metadata={"help": "seconds per request"})
    retries: int = field(default=3, metadata={"help": "client retries on 429/5xx/connection errors, with backoff"})
    concurrency: int = field(default=4, metadata={"help": "requests in flight at most (openai backend)"})
    parse_retries: int = field(default=2, metadata={"help": "re-asks when a verdict cannot be parsed"})
    judge_max_tokens: int = field(default=256, metadata={"help": "tokens the judge may write (text mode)"})
    axes: list[str] = field(
        default_factory=lambda: list(DEFAULT_AXES), metadata={"help": "rubric axes ([] for pairwise only)"}
    )
    axes_file: str | None = field(default=None, metadata={"path": True, "help": "TOML of custom rubric axes"})
    min_win_rate: float = field(default=0.5, metadata={"help": "required CI lower bound of the win rate"})
    rubric_tolerance: float = field(default=0.25, metadata={"help": "tolerated drop of a rubric axis (points)"})
    max_parse_failure_rate: float = field(default=0.1, metadata={"help": "above this share the gate errors"})
    min_swap_consistency: float = field(
        default=0.5, metadata={"help": "judge floor: share of prompts whose two orders agree, at least"}
    )
    max_position_bias: float = field(
        default=0.8, metadata={"help": "judge floor: share of A/B picks going to one position (A or B), at most"}
    )
    max_tie_rate: float = field(
        default=0.5, metadata={"help": "judge floor: share of prompts ending in a tie, at most"}
    )
    max_new_tokens: int = field(default=128, metadata={"help": "tokens per answer of base and candidate"})
    max_prompts: int | None = field(default=None, metadata={"help": "judge only the first N prompts of data"})
    seed: int = field(default=0, metadata={"help": "judge seed (recorded; temperature is always 0)"})
    confidence: float = field(default=0.95, metadata={"help": "two-sided level of the bootstrap intervals"})
    bootstrap_samples: int = field(default=2000, metadata={"help": "bootstrap resamples over prompts"})
    batch_size: int = field(default=64, metadata={"help": "sequences generated together"})
    evidence: int = field(default=5, metadata={"help": "how many lost prompts to show"})

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in ("hf", "openai"):
            problems.append(("backend", 'must be "hf" or "openai"'))
        if self.backend == "openai" and not self.base_url:
            problems.append(("base_url", "is required for the openai backend, e.g. http://127.0.0.1:8000/v1"))
        if self.backend == "openai" and self.model == EMBEDDED_ALIAS:
            problems.append(("model", "must name the model the endpoint serves (see its /v1/models)"))
        if not 0 <= self.min_win_rate <= 1:
            problems.append(("min_win_rate", "is a rate between 0 and 1, e.g. 0.5"))
        if not 0 <= self.max_parse_failure_rate <= 1:
            problems.append(("max_parse_failure_rate", "is a rate between 0 and 1"))
        for key, example in (("min_swap_consistency", 0.5), ("max_tie_rate", 0.5)):
            if not 0 <= getattr(self, key) <= 1:
                problems.append((key, f"is a rate between 0 and 1, e.g. {example}"))
        if not 0.5 <= self.max_position_bias <= 1:
            problems.append(("max_position_bias", "is a share between 0.5 (no bias allowed) and 1 (off), e.g. 0.8"))
        for key in ("retries", "parse_retries"):
            if getattr(self, key) < 0:
                problems.append((key, "must be >= 0"))
        for key in ("concurrency", "judge_max_tokens", "max_new_tokens", "batch_size"):
            if getattr(self, key) < 1:
                problems.append((key, "must be at least 1"))
        if self.axes and not self.axes_file:
            unknown = [a for a in self.axes if a not in DEFAULT_AXES]
            if unknown:
                problems.append(
                    ("axes", f"unknown {unknown}: built-in axes are {', '.join(DEFAULT_AXES)} (or set axes_file)")
                )
        if problems:
            raise ValueError(problems)

    def spec(self) -> JudgeSpec:
        return JudgeSpec(
            backend=self.backend,
            model=self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            timeout=self.timeout,
            retries=self.retries,
            concurrency=self.concurrency if self.backend == "openai" else 1,
            logprobs=self.logprobs if self.logprobs is not None else self.backend == "hf",
            parse_retries=self.parse_retries,
            max_tokens=self.judge_max_tokens,
            seed=self.seed,
            axes=tuple(self.axes),
            axes_file=self.axes_file,
        )


def _requests(p: JudgeParams) -> list[MeasureRequest]:
    answers = MeasureRequest(
        "answers",
        p.data,
        (
            ("n", 1),
            ("temperature", 0.0),
            ("top_p", 1.0),
            ("max_new_tokens", p.max_new_tokens),
            ("stop", ()),
            ("seed", 0),
            ("batch_size", p.batch_size),
            *((("limit", p.max_prompts),) if p.max_prompts else ()),
        ),
    )
    judged = MeasureRequest("judge", p.data, (("source", answers), ("spec", p.spec())), variants=("pair",))
    return [answers, judged]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _tables(d: dict[str, Any], reference: str = "base") -> tuple[Table, ...]:
    """Can the judge be trusted (swap consistency, ties, biases), and the rubric, for the report; `reference` names
    the compared model's column."""
    q, j = d.get("quality"), d.get("judge")
    if not q or not j:
        return ()
    who = f"`{j.get('model')}` ({j.get('backend')}{', ' + j['base_url'] if j.get('base_url') else ''})"
    quality = Table(
        "Judge quality",
        (
            "judge",
            "mode",
            "prompts",
            "judged",
            "swap consistency",
            "tie rate",
            "picks A",
            "longer answer wins",
            "parse failures",
        ),
        (
            (
                who,
                f"{d.get('mode')} (temperature 0, seed {d.get('seed')})",
                ", ".join(f"`{v}`" for v in d.get("prompts", {}).values()),
                str(q.get("judged")),
                _pct(q.get("swap_consistency")),
                _pct(q.get("tie_rate")),
                _pct(q.get("position_a_rate")),
                _pct(q.get("longer_answer_win_rate")),
                str(d.get("parse_failures", 0)),
            ),
        ),
    )
    rubric = d.get("rubric") or {}
    if not rubric:
        return (quality,)
    rows = []
    for axis, r in rubric.items():
        ci = r.get("change_ci")
        rows.append(
            (
                axis,
                _num(r.get("base")),
                _num(r.get("candidate")),
                f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "–",
                r.get("verdict", "not scored"),
            )
        )
    return quality, Table("Rubric (1-5)", ("axis", reference, "candidate", "change CI", "verdict"), tuple(rows))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value (ties excluded)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * p)


def judge_quality(pairs: list[PairJudgement]) -> dict[str, float | int | None]:
    """Can the judge be trusted? Swap consistency, tie rate, position bias, length bias."""
    parsed = [p for p in pairs if p.outcome is not None]
    picks = [v.choice for p in parsed for v in (p.base_first, p.candidate_first) if v.choice in ("A", "B")]
    decisive = [p for p in parsed if p.outcome in ("base", "candidate") and len(p.base) != len(p.candidate)]
    longer_won = [
        (len(p.candidate) > len(p.base)) == (p.outcome == "candidate") for p in decisive
    ]  # winner is the longer answer
    n = len(parsed)
    return {
        "judged": n,
        "swap_consistency": round(sum(bool(p.consistent) for p in parsed) / n, 6) if n else None,
        "tie_rate": round(sum(p.outcome == "tie" for p in parsed) / n, 6) if n else None,
        "position_a_rate": round(picks.count("A") / len(picks), 6) if picks else None,
        "longer_answer_win_rate": round(sum(longer_won) / len(longer_won), 6) if longer_won else None,
        "decisive_with_length_difference": len(longer_won),
    }


@dataclass(frozen=True)
class JudgeFloors:
    """The judge-quality floors, measured on the parsed prompts whose two answers differ (identical answers
    rightly end in a tie). `failed` names the floors missed; any makes the gate inconclusive."""

    measured_on: int
    identical_answers: int
    swap_consistency: float | None
    position_bias: float | None  # share of A/B picks going to the favoured position
    position_bias_side: str | None  # A or B
    tie_rate: float | None
    failed: tuple[str, ...]

    def describe(self) -> str:
        picks = f"picks {self.position_bias_side} {self.position_bias:.0%}" if self.position_bias is not None else ""
        return ", ".join(
            x
            for x in (
                f"swap consistency {self.swap_consistency:.0%}" if self.swap_consistency is not None else "",
                picks,
                f"ties {self.tie_rate:.0%}" if self.tie_rate is not None else "",
            )
            if x
        )


def judge_floors(p: JudgeParams, pairs: list[PairJudgement]) -> JudgeFloors:
    parsed = [q for q in pairs if q.outcome is not None]
    differing = [q for q in parsed if q.base.strip() != q.candidate.strip()]
    quality = judge_quality(differing)
    sw, ties, a_rate = quality["swap_consistency"], quality["tie_rate"], quality["position_a_rate"]
    bias = None if a_rate is None else round(max(a_rate, 1 - a_rate), 6)
    failed = [
        name
        for name, missed in (
            ("swap consistency", sw is not None and sw < p.min_swap_consistency),
            ("position bias", bias is not None and bias > p.max_position_bias),
            ("tie rate", ties is not None and ties > p.max_tie_rate),
        )
        if missed
    ]
    return JudgeFloors(
        measured_on=len(differing),
        identical_answers=len(parsed) - len(differing),
        swap_consistency=sw,
        position_bias=bias,
        position_bias_side=None if a_rate is None else "A" if a_rate >= 0.5 else "B",
        tie_rate=ties,
        failed=tuple(failed),
    )


@gate("judge", params=JudgeParams, requests=_requests)
def judge(p: JudgeParams, ctx: GateContext) -> GateResult:
    """Blind pairwise win rate (both orders) with a CI >= min_win_rate; rubric axes non-inferior to base."""
    _, req = _requests(p)
    run: JudgeRun = ctx.get(req, "pair")
    pairs = list(run.pairs)
    failed = [q for q in pairs if q.outcome is None]
    fail_rate = len(failed) / len(pairs) if pairs else 1.0
    quality = judge_quality(pairs)
    plumbing = (
        f" The judge is the embedded {EMBEDDED_ALIAS}: a 135M judge is a plumbing check, not a quality verdict; "
        'configure a capable judge (backend = "openai" with a strong model) for a real one.'
        if p.model == EMBEDDED_ALIAS
        else ""
    )
    details = {
        "judge": run.judge,
        "mode": run.mode,
        "prompts": run.prompts,
        "seed": run.seed,
        "temperature": 0,
        "calls": run.calls,
        "parse_failures": len(failed),
        "quality": quality,
    }
    if fail_rate > p.max_parse_failure_rate:
        return GateResult(
            name=ctx.name,
            verdict="error",
            metric="candidate win rate (win + 0.5 tie) / n",
            required=ctx.required,
            explanation=f"{len(failed)} of {len(pairs)} judgements could not be parsed after {p.parse_retries} "
            f"retries ({fail_rate:.0%} > max_parse_failure_rate {p.max_parse_failure_rate:.0%}): the judge does not "
            "follow the verdict format; use logprobs = true or a stronger judge model." + plumbing,
            evidence=tuple(
                Example(id=q.id, prompt=q.question, note=f"unparsed judge output: {q.base_first.reason[:200]!r}")
                for q in failed[: p.evidence]
            ),
            details=details,
            tables=_tables(details, ctx.reference),
        )
    parsed = [q for q in pairs if q.outcome is not None]
    scores = np.array([q.score for q in parsed])
    iv = bootstrap_mean(scores, resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
    checks = {"win rate": decide_non_inferiority(iv, p.min_win_rate).verdict}
    wins = sum(q.outcome == "candidate" for q in parsed)
    losses = sum(q.outcome == "base" for q in parsed)
    ties = len(parsed) - wins - losses

    axes = {}
    for axis in run.axes:
        by_id: dict[str, dict[str, float | None]] = {}
        for s in run.rubric:
            if s.axis == axis:
                by_id.setdefault(s.id, {})[s.variant] = s.score
        rows = [(v["base"], v["candidate"]) for v in by_id.values() if None not in (v.get("base"), v.get("candidate"))]
        if not rows:
            checks[f"rubric {axis}"] = "inconclusive"
            axes[axis] = {"scored": 0}
            continue
        b, c = np.array(rows, dtype=float).T
        aiv = bootstrap_mean(c - b, resamples=p.bootstrap_samples, level=p.confidence, seed=ctx.seed)
        checks[f"rubric {axis}"] = decide_non_inferiority(aiv, -p.rubric_tolerance).verdict
        axes[axis] = {
            "base": round(float(b.mean()), 4),
            "candidate": round(float(c.mean()), 4),
            "change_ci": [round(aiv.lower, 4), round(aiv.upper, 4)],
            "scored": len(rows),
            "verdict": checks[f"rubric {axis}"],
        }
    verdict = max(checks.values(), key=_ORDER.__getitem__)
    floors = judge_floors(p, parsed)
    sw = quality["swap_consistency"]
    parts = []
    if floors.failed:
        verdict = "inconclusive"  # not the candidate's account: the judge cannot tell the answers apart
        parts.append(
            f"The judge cannot discriminate: {floors.describe()} (floors: swap consistency >= "
            f"{p.min_swap_consistency:.0%}, one position <= {p.max_position_bias:.0%}, ties <= {p.max_tie_rate:.0%}; "
            f"on the {floors.measured_on} prompts whose answers differ), so its win rate says nothing about the "
            "candidate. Use a stronger judge model, and check the judge prompt and endpoint (does it see both "
            "answers? does it answer [[A]]/[[B]]/[[C]]?)."
        )
    parts += [
        f"Candidate win rate {iv.point:.3f} over {len(parsed)} prompts ({wins} won, {ties} tied, {losses} lost; "
        f"{iv.level:.0%} CI {iv.lower:.3f} to {iv.upper:.3f}; required lower bound >= {p.min_win_rate:.2f}; "
        f"sign test p = {sign_test(wins, losses):.3g}).",
    ]
    if axes:
        parts.append(
            f"Rubric (candidate vs {ctx.reference}, 1-5): "
            + "; ".join(
                f"{a} {v['candidate']:.2f} vs {v['base']:.2f}" if v.get("scored") else f"{a} not scored"
                for a, v in axes.items()
            )
            + f" (tolerated drop {p.rubric_tolerance})."
        )
    parts.append(
        f"Judge quality: swap consistency {sw:.0%}, tie rate {quality['tie_rate']:.0%}"
        + (f", picks A {quality['position_a_rate']:.0%} of the time" if quality["position_a_rate"] is not None else "")
        + (
            f", the longer answer won {quality['longer_answer_win_rate']:.0%} of decisive verdicts"
            if quality["longer_answer_win_rate"] is not None
            else ""
        )
        + f"; {len(failed)} parse failure(s)."
        if sw is not None
        else "No judgement was parsed."
    )
    if parsed and not floors.measured_on:
        parts.append(
            f"{ctx.reference.capitalize()} and candidate answered every prompt identically, so the judge floors "
            "were not measured (there is nothing to discriminate)."
        )
    failing = [f"{k} ({v})" for k, v in checks.items() if v != "pass"]
    failing += [f"judge floors ({', '.join(floors.failed)})"] if floors.failed else []
    parts.append(f"Not passing: {', '.join(failing)}." if failing else "Every check passes.")
    lost = [q for q in parsed if q.outcome == "base"]
    evidence = tuple(
        Example(
            id=q.id,
            prompt=q.question,
            base_output=q.base,
            candidate_output=q.candidate,
            base_score=1.0,
            candidate_score=0.0,
            note=f"judge ({ctx.reference} shown first): {q.base_first.reason[:300]}",
        )
        for q in lost[: p.evidence]
    )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric="candidate win rate (win + 0.5 tie) / n, minus parity 0.5",
        required=ctx.required,
        baseline=0.5,  # parity
        candidate=round(iv.point, 6),
        delta=round(iv.point - 0.5, 6),  # like every gate, delta, its CI and the threshold are on one scale
        threshold=round(p.min_win_rate - 0.5, 6),
        ci=(round(iv.lower - 0.5, 6), round(iv.upper - 0.5, 6)),
        explanation=" ".join(parts) + plumbing,
        evidence=evidence,
        evidence_total=len(lost),
        tables=_tables({**details, "rubric": axes}, ctx.reference),
        details={
            **details,
            "wins": wins,
            "ties": ties,
            "losses": losses,
            "checks": checks,
            "floors": {
                **asdict(floors),
                "failed": list(floors.failed),
                "min_swap_consistency": p.min_swap_consistency,
                "max_position_bias": p.max_position_bias,
                "max_tie_rate": p.max_tie_rate,
            },
            "rubric": axes,
            "bootstrap": {"resamples": iv.resamples, "level": iv.level, "seed": iv.seed, "method": "over prompts"},
        },
    )
