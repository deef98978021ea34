"""The release report: what `report.json` holds and what every renderer reads."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gates.types import GateResult

SCHEMA_VERSION = 2  # 2: gates carry `tables` and `excluded_items` (later, optional: top-level `reference`, verdict n/a)


@dataclass(frozen=True)
class Report:
    """`candidate` and `reference` describe the two models compared: {"form": "base" | "adapter" | "full", "path",
    "sha256", "base" (the base model's id), "describe" (human words), and for the reference "registry": {"dir",
    "version"} or None; an adapter candidate also keeps "adapter" and "adapter_sha256"}. `reference` is None in
    reports from before references (the base was the reference)."""

    verdict: str  # "pass" | "fail"
    gates: tuple[GateResult, ...]
    candidate: dict[str, Any]
    manifest: dict[str, Any]
    created_at: str
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())
    reference: dict[str, Any] | None = None

    @property
    def blocking(self) -> list[GateResult]:
        return [g for g in self.gates if g.blocks]

    @property
    def not_applicable(self) -> list[GateResult]:
        """Gates with no question for this candidate (verdict n/a): neither passed nor blocking."""
        return [g for g in self.gates if not g.applicable]

    @property
    def reference_label(self) -> Literal["base", "reference"]:
        """What headings and figures call the compared model: "base" when it is the base (or the report predates
        references), "reference" when it is another model (a registry release, an adapter, a full checkpoint)."""
        return reference_label(self.reference)

    def with_note(self, note: str) -> Report:
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "verdict": self.verdict,
            "created_at": self.created_at,
            "reference": self.reference,
            "candidate": self.candidate,
            "gates": [g.to_dict() for g in self.gates],
            "blocking": [g.name for g in self.blocking],
            "notes": list(self.notes),
            "manifest": self.manifest,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        return cls(
            verdict=d["verdict"],
            gates=tuple(GateResult.from_dict(g) for g in d["gates"]),
            candidate=d.get("candidate", {}),
            manifest=d.get("manifest", {}),
            created_at=d.get("created_at", ""),
            schema_version=d.get("schema_version", SCHEMA_VERSION),
            notes=tuple(d.get("notes", ())),
            reference=d.get("reference"),
        )


def reference_label(reference: dict[str, Any] | None) -> Literal["base", "reference"]:
    """The word for the compared model: "base" unless `reference` names another model (its form is not "base")."""
    return "base" if not reference or reference.get("form", "base") == "base" else "reference"


CONTENT_HASH = "content_sha256"  # report.json's hash of everything else it holds (an edit after writing shows)


def content_sha256(d: dict[str, Any]) -> str:
    """The sha256 of a report dict as its JSON file holds it (every key but CONTENT_HASH, keys sorted), the same
    before writing and after reading back."""
    canon = json.loads(json.dumps({k: v for k, v in d.items() if k != CONTENT_HASH}, default=str))
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sealed(report: Report) -> dict[str, Any]:
    """`report.to_dict()` with its content hash, as report.json is written."""
    d = report.to_dict()
    return {**d, CONTENT_HASH: content_sha256(d)}
