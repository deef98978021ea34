"""What a judging run produces and how it is configured: plain, serialisable types with no engine behind them
(the `judge` gate decides on these without importing a backend)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class JudgeSpec:
    """How to judge (hashable: it travels inside a MeasureRequest's options)."""

    backend: str = "hf"  # hf | openai
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0
    retries: int = 3
    concurrency: int = 4
    logprobs: bool = True
    parse_retries: int = 2
    max_tokens: int = 256
    seed: int = 0
    axes: tuple[str, ...] = ()
    axes_file: str | None = None

    @property
    def mode(self) -> str:
        return "choice" if self.logprobs else "text"


@dataclass(frozen=True)
class OrderVerdict:
    """One order's judgement: `choice` is A, B, tie or None (unparsed after every retry)."""

    choice: str | None
    reason: str
    probs: dict[str, float] | None
    attempts: int


@dataclass(frozen=True)
class PairJudgement:
    id: str
    question: str
    base: str
    candidate: str
    base_first: OrderVerdict  # A = base, B = candidate
    candidate_first: OrderVerdict  # A = candidate, B = base

    @staticmethod
    def _winner(v: OrderVerdict, a: str, b: str) -> str | None:
        return {"A": a, "B": b, "tie": "tie"}.get(v.choice or "")

    @property
    def orders(self) -> tuple[str | None, str | None]:
        """The winner named by each order: base, candidate, tie or None."""
        return (
            self._winner(self.base_first, "base", "candidate"),
            self._winner(self.candidate_first, "candidate", "base"),
        )

    @property
    def outcome(self) -> str | None:
        """candidate, base or tie (orders disagree, or a tie); None when a verdict was not parsed."""
        first, second = self.orders
        if first is None or second is None:
            return None
        return first if first == second and first != "tie" else "tie"

    @property
    def consistent(self) -> bool | None:
        first, second = self.orders
        return None if first is None or second is None else first == second

    @property
    def score(self) -> float | None:
        """1 candidate win, 0.5 tie, 0 base win."""
        return {"candidate": 1.0, "tie": 0.5, "base": 0.0}.get(self.outcome or "")


@dataclass(frozen=True)
class RubricScore:
    id: str
    axis: str
    variant: str
    score: float | None
    reason: str
    attempts: int


@dataclass(frozen=True)
class JudgeRun:
    """Everything a `judge` gate decides on, serialisable."""

    judge: dict[str, Any]
    mode: str
    prompts: dict[str, str]  # role -> prompt version
    seed: int
    pairs: tuple[PairJudgement, ...]
    rubric: tuple[RubricScore, ...] = ()
    axes: tuple[str, ...] = ()
    calls: dict[str, int] = field(default_factory=dict)  # asked, cached

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def without(self, ids: set[str]) -> JudgeRun:
        from dataclasses import replace

        return replace(
            self,
            pairs=tuple(p for p in self.pairs if p.id not in ids),
            rubric=tuple(r for r in self.rubric if r.id not in ids),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JudgeRun:
        pairs = tuple(
            PairJudgement(
                **{
                    **p,
                    "base_first": OrderVerdict(**p["base_first"]),
                    "candidate_first": OrderVerdict(**p["candidate_first"]),
                }
            )
            for p in d["pairs"]
        )
        return cls(
            judge=d["judge"],
            mode=d["mode"],
            prompts=d["prompts"],
            seed=d["seed"],
            pairs=pairs,
            rubric=tuple(RubricScore(**r) for r in d.get("rubric", ())),
            axes=tuple(d.get("axes", ())),
            calls=d.get("calls", {}),
        )


@dataclass(frozen=True)
class RefusalLabels:
    """The judge's label per answer (True: refuses; None: unparsed), for the reference ("base") and candidate."""

    base: tuple[bool | None, ...]
    candidate: tuple[bool | None, ...]
    judge: dict[str, Any]
    prompt: str
    calls: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefusalLabels:
        return cls(tuple(d["base"]), tuple(d["candidate"]), d["judge"], d["prompt"], d["calls"])
