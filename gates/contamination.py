"""The `contamination` gate: no eval set may contain (beyond `max_contaminated`) items the fine-tune trained on,
found by exact 13-gram overlap or fuzzy matching (probes/overlap.py). It checks its own `data` against its own
`train`, and, unless `include_config_data = false`, every data set the other gates read against the training
data named by `[fine_tune]` and by the adapter's training manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from gates.registry import GateContext, MeasureRequest, PlanInfo, gate
from gates.types import Example, GateResult
from probes.contamination import ContaminationRun


@dataclass(frozen=True)
class ContaminationParams:
    data: str | list[str] | None = field(default=None, metadata={"path": True, "help": "eval set(s) to check"})
    train: str | list[str] | None = field(default=None, metadata={"path": True, "help": "training set(s)"})
    include_config_data: bool = field(
        default=True, metadata={"help": "also check every other gate's data against [fine_tune] and manifest data"}
    )
    n: int = field(default=13, metadata={"help": "n-gram length of the exact check"})
    fuzzy_cutoff: float = field(default=90.0, metadata={"help": "rapidfuzz token_sort_ratio score that counts (0-100)"})
    max_contaminated: float = field(default=0.0, metadata={"help": "largest tolerated contaminated share per set"})
    evidence: int = field(default=10, metadata={"help": "how many contaminated items to show"})

    def __post_init__(self) -> None:
        problems = []
        if self.n < 3:
            problems.append(("n", "must be at least 3 (13 is the usual choice)"))
        if not 50 <= self.fuzzy_cutoff <= 100:
            problems.append(("fuzzy_cutoff", "is a similarity score between 50 and 100, e.g. 90"))
        if not 0 <= self.max_contaminated < 1:
            problems.append(("max_contaminated", "is a share in [0, 1), e.g. 0"))
        if problems:
            raise ValueError(problems)


def _specs(v: str | list[str] | None) -> tuple[str, ...]:
    return () if v is None else (v,) if isinstance(v, str) else tuple(v)


def _request(p: ContaminationParams, evals: tuple[str, ...], train: tuple[str, ...]) -> MeasureRequest:
    opts = (("evals", evals), ("train", train), ("n", p.n), ("fuzzy_cutoff", p.fuzzy_cutoff))
    return MeasureRequest("contamination", "", opts, variants=("data",))


def _requests(p: ContaminationParams) -> list[MeasureRequest]:
    return [_request(p, _specs(p.data), _specs(p.train))]


def _plan(p: ContaminationParams, info: PlanInfo) -> list[MeasureRequest]:
    evals, train = list(_specs(p.data)), list(_specs(p.train))
    if p.include_config_data:
        evals += [d for d in info.data if d not in evals]
        train += [t for t in info.train if t not in train]
    out = [_request(p, tuple(dict.fromkeys(evals)), tuple(dict.fromkeys(train)))]
    if info.train:  # the candidate's training data as the trainer saw it, for the report's dataset section
        out.append(MeasureRequest("audit", "", (("train", info.train),), variants=("data",)))
    return out


@gate("contamination", params=ContaminationParams, requests=_requests, plan=_plan)
def contamination(p: ContaminationParams, ctx: GateContext) -> GateResult:
    """Share of contaminated items in every eval set <= max_contaminated (default 0)."""
    req = next(r for r in ctx.requests if r.kind == "contamination")
    run: ContaminationRun = ctx.get(req, "data")
    worst = max(run.evals, key=lambda e: e.share)
    bad = [e for e in run.evals if e.share > p.max_contaminated]
    lines = [
        f"{e.name}: {len(e.matches)} of {e.items} items"
        + (
            f" ({sum(m.method == 'exact' for m in e.matches)} exact, "
            f"{sum(m.method == 'fuzzy' for m in e.matches)} fuzzy)"
            if e.matches
            else ""
        )
        for e in run.evals
    ]
    trains = ", ".join(f"{t['name']} ({t['items']} items)" for t in run.train)
    head = (
        f"{len(run.evals)} eval set(s) checked against {trains} with {run.n}-gram overlap and fuzzy matching "
        f"(token_sort_ratio >= {run.fuzzy_cutoff:g}): " + "; ".join(lines) + "."
    )
    if bad:
        tail = (
            f" Contaminated beyond the tolerated {p.max_contaminated:.0%}: {', '.join(e.name for e in bad)}. Scores "
            "on these items measure memory, not ability: remove them from training (or the eval set) and re-train; "
            "the gates that use them also report their numbers without them."
        )
    else:
        tail = " No eval set is contaminated beyond the tolerated share."
    evidence = tuple(
        Example(
            id=m.eval_id,
            prompt=m.eval_text,
            base_output=None,
            candidate_output=None,
            candidate_score=m.score,
            note=f"{e.name} item matches {m.train_set} item {m.train_id} ({m.method}, "
            + (f"{m.score:.0%} of its {run.n}-grams" if m.method == "exact" else f"score {m.score:g}")
            + f"): {m.train_text}",
        )
        for e in run.evals
        for m in e.matches
    )[: p.evidence]
    return GateResult(
        name=ctx.name,
        verdict="fail" if bad else "pass",
        metric="largest contaminated share of an eval set",
        required=ctx.required,
        baseline=None,
        candidate=round(worst.share, 6),
        delta=None,
        threshold=p.max_contaminated,
        ci=None,
        explanation=head + tail,
        evidence=evidence,
        evidence_total=sum(len(e.matches) for e in run.evals),
        excluded_items={e.spec: tuple(e.contaminated_ids) for e in run.evals if e.contaminated_ids},
        details={
            "train": list(run.train),
            "sets": {
                e.spec: {
                    "name": e.name,
                    "items": e.items,
                    "contaminated": len(e.matches),
                    "share": round(e.share, 6),
                    "ids": e.contaminated_ids,
                    "matches": [
                        {
                            "eval_id": m.eval_id,
                            "train_set": m.train_set,
                            "train_id": m.train_id,
                            "method": m.method,
                            "score": m.score,
                        }
                        for m in e.matches
                    ],
                }
                for e in run.evals
            },
            "n": run.n,
            "fuzzy_cutoff": run.fuzzy_cutoff,
            "seconds": run.seconds,
        },
    )
