"""Typed results of the gate engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# "n/a" (not applicable): the gate has no question for this candidate's form (e.g. `merge_parity` for a candidate that
# is already a full checkpoint); it neither passes nor blocks
Verdict = Literal["pass", "fail", "inconclusive", "skip", "error", "n/a"]
VERDICTS: tuple[str, ...] = ("pass", "fail", "inconclusive", "skip", "error", "n/a")


@dataclass(frozen=True)
class Example:
    """One piece of evidence behind a verdict: an item and how base and candidate did on it."""

    id: str
    prompt: str
    base_output: str | None = None
    candidate_output: str | None = None
    base_score: float | None = None
    candidate_score: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Table:
    """A table the report shows for a gate, rendered as it is. `section` "gate" puts it under the gate's own
    heading; "ships" adds its rows to the report's "what ships" table (files, sizes, hashes, bundle)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    section: Literal["gate", "ships"] = "gate"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Table:
        return cls(d["title"], tuple(d["columns"]), tuple(tuple(r) for r in d["rows"]), d.get("section", "gate"))


@dataclass(frozen=True)
class GateResult:
    """The decision of one gate. `ci` is (lower, upper) of `delta` where the gate is statistical."""

    name: str
    verdict: Verdict
    metric: str
    explanation: str
    baseline: float | None = None
    candidate: float | None = None
    delta: float | None = None
    threshold: float | None = None
    ci: tuple[float, float] | None = None
    required: bool = True
    evidence: tuple[Example, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()  # what the report shows for this gate beyond the row, evidence and explanation
    # items this gate found unfit to measure on (data spec -> item ids, e.g. contaminated ones): every other gate
    # that read them is decided again without them, and both verdicts are shown
    excluded_items: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # how many items qualified for `evidence` (it shows the worst of them): the report says how many more there are
    # and where they are; None where the gate does not count them
    evidence_total: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def blocks(self) -> bool:
        """A required gate blocks unless it passed or does not apply (n/a); an optional one never blocks."""
        return self.required and self.verdict not in ("pass", "n/a")

    @property
    def applicable(self) -> bool:
        """False for an `n/a` gate: it asked nothing of this candidate, so it counts as neither a pass nor a block."""
        return self.verdict != "n/a"

    @property
    def reason_na(self) -> str:
        """Why the gate does not apply ("" unless its verdict is n/a)."""
        if self.applicable:
            return ""
        return str(self.details.get("not_applicable") or self.explanation.removeprefix("Not applicable: "))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["evidence"] = [asdict(e) for e in self.evidence]
        d["excluded_items"] = {k: list(v) for k, v in self.excluded_items.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateResult:
        d = dict(d)
        d["ci"] = tuple(d["ci"]) if d.get("ci") is not None else None
        d["evidence"] = tuple(Example(**e) for e in d.get("evidence", ()))
        d["tables"] = tuple(Table.from_dict(t) for t in d.get("tables", ()))
        d["excluded_items"] = {k: tuple(v) for k, v in d.get("excluded_items", {}).items()}
        return cls(**d)

    @classmethod
    def errored(cls, name: str, exc: BaseException | str, *, required: bool = True, metric: str = "") -> GateResult:
        msg = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        return cls(
            name=name,
            verdict="error",
            metric=metric,
            required=required,
            explanation=f"The gate could not be decided and blocks the release: {msg}",
        )

    @classmethod
    def not_applicable(cls, name: str, reason: str, *, required: bool = True, metric: str = "") -> GateResult:
        """The gate has no question for this candidate (verdict `n/a`): `reason` says why, e.g. "the candidate is
        already merged"."""
        reason = reason.strip().rstrip(".")
        return cls(
            name=name,
            verdict="n/a",
            metric=metric,
            required=required,
            explanation=f"Not applicable: {reason}.",
            details={"not_applicable": reason},
        )
