"""Licence audit of a data file: the `license` (and `source`) each row carries, or the file's dataset card.

A row's own `license` field wins; a row without one takes the licence of the file's dataset card (a `README.md`
beside the file whose YAML front matter says `license: ...`, the Hugging Face datasets convention), else it has
none and is flagged. `allowed` / `disallowed` (`[data] allowed_licenses` / `disallowed_licenses`) refuse rows:
a disallowed licence, or with an allow-list any licence not on it. Licence ids compare case-insensitively.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.data import (
    clip,  # a row's id and licence are the user's text: quoted, never whole
    load_dataset,
)
from harness.core.errors import HarnessError

NONE = "(none)"


@dataclass(frozen=True)
class LicenseTally:
    licenses: dict[str, int]  # licence -> rows ((none): rows that carry none)
    sources: dict[str, int]
    card: str | None  # the dataset card's licence, when there is one
    unlicensed: list[str]  # ids of rows with no licence (first 20)
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"id", "line", "license", "why"} (first 50)
    refused_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def card_license(data_file: Path) -> str | None:
    """`license:` from the YAML front matter of the README.md beside `data_file` (a dataset card)."""
    card = data_file.parent / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    m = re.match(r"^---\s*\n(.*?)\n---", text, re.S)
    if not m:
        return None
    for line in m.group(1).splitlines():
        k, _, v = line.partition(":")
        if k.strip().lower() == "license" and v.strip():
            return v.strip().strip("'\"")
    return None


def tally(dataset: Any, *, allowed: list[str] = (), disallowed: list[str] = ()) -> LicenseTally:  # type: ignore[assignment]
    card = card_license(Path(dataset.path))
    allow = {a.lower() for a in allowed}
    deny = {d.lower() for d in disallowed}
    licenses: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    unlicensed, refused, n_refused = [], [], 0
    for r in dataset.records:
        lic = r.meta.get("license") or card
        lic = str(lic) if lic else None
        licenses[lic or NONE] += 1
        if r.meta.get("source"):
            sources[str(r.meta["source"])] += 1
        if lic is None:
            if len(unlicensed) < 20:
                unlicensed.append(r.id)
            continue
        why = (
            "disallowed"
            if lic.lower() in deny
            else "not in allowed_licenses"
            if allow and lic.lower() not in allow
            else None
        )
        if why:
            n_refused += 1
            if len(refused) < 50:
                refused.append({"id": r.id, "line": r.line, "license": lic, "why": why})
    return LicenseTally(dict(licenses.most_common()), dict(sources.most_common()), card, unlicensed, refused, n_refused)


def refusal_message(name: str, t: LicenseTally) -> str:
    rows = ", ".join(
        f"{clip(str(x['id']))} (line {x['line']}: {clip(str(x['license']))}, {x['why']})" for x in t.refused[:5]
    )
    more = f" and {t.refused_rows - 5} more" if t.refused_rows > 5 else ""
    return f"{t.refused_rows} row(s) of {name} carry a licence the config refuses: {rows}{more}"


def refuse_disallowed(specs: list[str], base_dir: Path | None, rules: Any, where: str) -> None:
    """Raise `HarnessError` naming the rows when a data file carries a licence `rules` ([data]) refuses."""

    if not (rules.allowed_licenses or rules.disallowed_licenses):
        return
    for spec in specs:
        ds = load_dataset(spec, base_dir, key=where)
        t = tally(ds, allowed=rules.allowed_licenses, disallowed=rules.disallowed_licenses)
        if t.refused_rows:
            first = t.refused[0]
            raise HarnessError(
                refusal_message(str(ds.path), t),
                where=f"{ds.path}:{first['line']}",
                fix="remove those rows (or the file), or change [data] allowed_licenses / disallowed_licenses if "
                "their licence does permit this use",
            )
