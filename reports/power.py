"""The power table: what each statistical gate's interval can resolve at its item count (report and `harness plan`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HEADER = ("gate", "measure", "items", "sd (from)", "expected ± half-width", "tolerance", "resolves?", "items needed")


def _sources(reference: str) -> dict[str, str]:
    """What each sd source is called; the source "base" is the compared model's measurement alone."""
    return {"prior": "prior", "base": f"{reference} alone", "paired": f"{reference} + candidate"}


def power_rows(table: Mapping[str, Sequence[Any]], reference: str = "base") -> list[tuple[str, ...]]:
    """One row per (gate, measure); `table` maps a gate to Power objects or their dicts; `reference` is the word for
    the compared model ("base" | "reference")."""
    sources = _sources(reference)
    rows = []
    for name, powers in table.items():
        for p in powers:
            d = p if isinstance(p, Mapping) else p.__dict__
            tol = d["tolerance"]
            resolves = "–" if tol is None else ("yes" if d["half_width"] < tol else "**no**")
            rows.append(
                (
                    f"`{name}`",
                    d["measure"],
                    str(d["items"]),
                    f"{d['sd']:.3g} ({sources.get(d['sd_source'], d['sd_source'])}"
                    + (", upper bound)" if d.get("upper_bound") else ")"),
                    f"±{d['half_width']:.3g}",
                    "– (superiority: a gain must clear its margin by this much)" if tol is None else f"{tol:.3g}",
                    resolves,
                    "–" if d["items_needed"] is None else str(d["items_needed"]),
                )
            )
    return rows


def power_section(gates: Sequence[Any], reference: str = "base") -> list[str]:
    """`## How much each gate can resolve`, from each gate's `details["power"]` (measured after the run); gates that
    do not apply (n/a) have no row."""
    table = {g.name: g.details["power"] for g in gates if g.details.get("power") and g.verdict != "n/a"}
    if not table:
        return []
    out = [
        "",
        "## How much each gate can resolve",
        "",
        "Expected 95% half-width of each paired interval at the items measured, with the sd of the per-item change",
        f"from {reference} and candidate; a tolerance below the half-width cannot be shown, whatever the candidate "
        "does.",
        "`items needed`: items that would show non-inferiority at the tolerance with 80% power if nothing changed.",
        f"An `upper bound` sd assumes the candidate answers independently of the {reference} (nothing paired was "
        "measured).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    out += ["| " + " | ".join(r) + " |" for r in power_rows(table, reference)]
    return out
