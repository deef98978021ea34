"""`answer_chars`: the candidate's greedy answers may not be longer, in characters, than `max_ratio` times the
reference's (summed over the prompts of `data`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gates import GateContext, GateResult, gate
from gates.registry import probe_request


@dataclass(frozen=True)
class AnswerCharsParams:
    data: str = field(default="builtin:general", metadata={"path": True, "help": "prompts answered by both"})
    max_ratio: float = field(default=1.5, metadata={"help": "largest tolerated ratio of answer characters"})
    max_new_tokens: int = field(default=16, metadata={"help": "tokens generated per answer at most (greedy)"})

    def __post_init__(self) -> None:
        if self.max_ratio <= 0:
            raise ValueError([("max_ratio", "must be above 0")])


def _requests(p: AnswerCharsParams):
    return [probe_request(p.data, max_new_tokens=p.max_new_tokens, batch_size=8)]


@gate("answer_chars", params=AnswerCharsParams, requests=_requests)
def answer_chars(p: AnswerCharsParams, ctx: GateContext) -> GateResult:
    """Candidate answer characters / reference answer characters at most max_ratio."""
    (req,) = _requests(p)
    ref = sum(len(o) for i in ctx.get(req, "base").items for o in i.outputs)
    cand = sum(len(o) for i in ctx.get(req, "candidate").items for o in i.outputs)
    ratio = cand / max(ref, 1)
    return GateResult(
        name="answer_chars",
        verdict="pass" if ratio <= p.max_ratio else "fail",
        metric="answer characters, candidate / reference",
        baseline=float(ref),
        candidate=float(cand),
        delta=ratio,
        threshold=p.max_ratio,
        explanation=f"the candidate's answers have {ratio:.2f}x the reference's characters (at most {p.max_ratio})",
    )
