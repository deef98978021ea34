"""Measurement results (plain, serialisable, torch-free) that gates read."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DocNLL:
    """Summed negative log-likelihood (nats) of one document's scored tokens."""

    id: str
    nll: float
    tokens: int
    bytes: int
    preview: str


@dataclass(frozen=True)
class NLLMeasurement:
    docs: tuple[DocNLL, ...]
    max_length: int
    scored: str  # "all" tokens of text rows; "completion" tokens of chat rows

    @property
    def total_nll(self) -> float:
        return sum(d.nll for d in self.docs)

    @property
    def total_tokens(self) -> int:
        return sum(d.tokens for d in self.docs)

    @property
    def total_bytes(self) -> int:
        return sum(d.bytes for d in self.docs)

    @property
    def perplexity(self) -> float:
        return math.exp(self.total_nll / max(self.total_tokens, 1))

    @property
    def bits_per_byte(self) -> float:
        return self.total_nll / (math.log(2) * max(self.total_bytes, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"docs": [asdict(d) for d in self.docs], "max_length": self.max_length, "scored": self.scored}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NLLMeasurement:
        return cls(tuple(DocNLL(**x) for x in d["docs"]), d["max_length"], d["scored"])

    def without(self, ids: set[str]) -> NLLMeasurement:
        """The same measurement minus some documents (e.g. contaminated ones)."""
        return NLLMeasurement(tuple(d for d in self.docs if d.id not in ids), self.max_length, self.scored)


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe item's n samples and how each fared under the item's checker."""

    id: str
    prompt: str
    outputs: tuple[str, ...]
    passed: tuple[bool, ...]
    parsed: tuple[bool, ...]
    details: tuple[str, ...]
    tokens: tuple[int, ...] = ()  # generated tokens per output, the end-of-answer token excluded
    category: str = ""  # the suite row's `category` (harm category, task family), for per-category tables

    @property
    def n(self) -> int:
        return len(self.outputs)

    @property
    def c(self) -> int:
        return sum(self.passed)


@dataclass(frozen=True)
class ProbeRun:
    items: tuple[ProbeOutcome, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeRun:
        return cls(
            tuple(ProbeOutcome(**{k: tuple(v) if isinstance(v, list) else v for k, v in i.items()}) for i in d["items"])
        )

    def without(self, ids: set[str]) -> ProbeRun:
        return ProbeRun(tuple(i for i in self.items if i.id not in ids))


@dataclass(frozen=True)
class TaskItem:
    """One document of a benchmark task, as lm-eval scored it for one model."""

    doc_id: int
    prompt: str  # the end of the context the model saw (few-shot examples included)
    target: str
    response: str  # the chosen option (multiple choice) or the generated answer after the task's filter
    score: float  # the task metric for this document (1.0 / 0.0 for acc and exact_match)
    # multiple choice: each option's log-likelihood and the right option's index (the calibration gate's input)
    logliks: tuple[float, ...] = ()
    gold: int = -1


@dataclass(frozen=True)
class TaskRun:
    """One lm-eval task for one model: per-document scores, and lm-eval's own aggregate of them."""

    name: str
    metric: str
    output_type: str
    num_fewshot: int
    version: str
    lm_eval_score: float  # lm-eval's `results[task][metric,filter]`: the mean of `items` scores
    items: tuple[TaskItem, ...]

    @property
    def score(self) -> float:
        return sum(i.score for i in self.items) / max(len(self.items), 1)


@dataclass(frozen=True)
class TaskSuiteRun:
    """Every task of one `lmeval` measurement (lm-evaluation-harness run through a harness runtime)."""

    tasks: tuple[TaskRun, ...]
    lm_eval_version: str

    def task(self, name: str) -> TaskRun:
        return next(t for t in self.tasks if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lm_eval_version": self.lm_eval_version,
            "tasks": [{**asdict(t), "items": [asdict(i) for i in t.items]} for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSuiteRun:
        tasks = tuple(
            TaskRun(
                **{**t, "items": tuple(TaskItem(**{**i, "logliks": tuple(i.get("logliks", ()))}) for i in t["items"])}
            )
            for t in d["tasks"]
        )
        return cls(tasks, d["lm_eval_version"])


@dataclass(frozen=True)
class ChoiceItem:
    """One closed-answer item for one model: the log-likelihood of each option, and which option is right."""

    id: str
    prompt: str  # a preview of the prompt
    options: tuple[str, ...]
    logliks: tuple[float, ...]  # summed log-probability of each option's tokens as the answer
    answer: int  # index of the right option


@dataclass(frozen=True)
class ChoiceRun:
    """Every item of one `choices` measurement (`probes.choices`)."""

    items: tuple[ChoiceItem, ...]
    answer_prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"answer_prefix": self.answer_prefix, "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChoiceRun:
        items = tuple(
            ChoiceItem(i["id"], i["prompt"], tuple(i["options"]), tuple(i["logliks"]), i["answer"]) for i in d["items"]
        )
        return cls(items, d.get("answer_prefix", ""))

    def without(self, ids: set[str]) -> ChoiceRun:
        return ChoiceRun(tuple(i for i in self.items if i.id not in ids), self.answer_prefix)


@dataclass(frozen=True)
class PairScore:
    """One preference pair under one model: each answer's summed log-probability as the prompt's continuation (its
    end-of-turn marker included when the template has one) and how many tokens were scored."""

    id: str
    prompt: str  # a preview of the prompt
    chosen: str  # the preferred answer (clipped for the report)
    rejected: str  # the dispreferred answer (clipped)
    ll_chosen: float
    ll_rejected: float
    n_chosen: int  # answer tokens scored (the end-of-turn marker counted)
    n_rejected: int

    def score(self, normalize: str = "sum") -> tuple[float, float]:
        """(chosen, rejected) scores: summed log-probabilities, or per answer token with `normalize` "tokens"."""
        if normalize == "tokens":
            return self.ll_chosen / max(self.n_chosen, 1), self.ll_rejected / max(self.n_rejected, 1)
        return self.ll_chosen, self.ll_rejected


@dataclass(frozen=True)
class PreferenceRun:
    """Every pair of one `preference` measurement (`probes.preference`)."""

    pairs: tuple[PairScore, ...]
    end_of_turn: str = ""  # the end-of-turn marker scored after each answer ("": none)

    def to_dict(self) -> dict[str, Any]:
        return {"end_of_turn": self.end_of_turn, "pairs": [asdict(p) for p in self.pairs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferenceRun:
        return cls(tuple(PairScore(**p) for p in d["pairs"]), d.get("end_of_turn", ""))

    def without(self, ids: set[str]) -> PreferenceRun:
        return PreferenceRun(tuple(p for p in self.pairs if p.id not in ids), self.end_of_turn)
