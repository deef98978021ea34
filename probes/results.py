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
