"""The release report: what `report.json` holds and what every renderer reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gates.types import GateResult

SCHEMA_VERSION = 2  # 2: gates carry `tables` and `excluded_items`


@dataclass(frozen=True)
class Report:
    verdict: str  # "pass" | "fail"
    gates: tuple[GateResult, ...]
    candidate: dict[str, Any]
    manifest: dict[str, Any]
    created_at: str
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())

    @property
    def blocking(self) -> list[GateResult]:
        return [g for g in self.gates if g.blocks]

    def with_note(self, note: str) -> Report:
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "verdict": self.verdict,
            "created_at": self.created_at,
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
        )
