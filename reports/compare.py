"""`harness compare A B`: two report directories side by side (two candidates gated against one reference, or the
same candidate on two days). Each gate's verdict and change from the two report.json files, and the items whose
outcome differs between the runs from the two items tables (`reports.items`): the same gate, measurement, item and
variant with another outcome or status. As DataFrames (`compare(a, b) -> Comparison`) and as Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from reports import load_report
from reports.items import PARQUET, read_items
from reports.types import Report

FILE = "compare.md"  # what `harness compare A B --out DIR` writes into DIR
KEY = ["gate", "measurement", "item_id", "variant"]
GATE_COLUMNS = (
    "gate",
    "metric",
    "required",
    "verdict_a",
    "verdict_b",
    "verdict_changed",
    "baseline_a",
    "baseline_b",
    "candidate_a",
    "candidate_b",
    "delta_a",
    "delta_b",
    "ci_a",
    "ci_b",
    "threshold_a",
    "threshold_b",
)
ITEM_COLUMNS = (
    *KEY,
    "category",
    "prompt",
    "outcome_a",
    "outcome_b",
    "status_a",
    "status_b",
    "score_a",
    "score_b",
    "answer_a",
    "answer_b",
)
MARKDOWN_ITEMS = 200  # item rows the Markdown lists; the DataFrame holds them all


@dataclass(frozen=True)
class Comparison:
    """Two runs side by side. `gates`: one row per gate of either report (`GATE_COLUMNS`; a gate one report lacks
    has None there). `items`: the item rows both runs measured whose outcome differs, or whose status (lost, gained,
    same: the candidate's, on its row) differs (`ITEM_COLUMNS`). `only_one`: item rows one run measured and the
    other did not (e.g. a sequential gate that looked again in one run only).
    `notes`: what could not be compared (a directory without items.parquet)."""

    a: Path
    b: Path
    report_a: Report
    report_b: Report
    gates: Any  # pandas.DataFrame
    items: Any  # pandas.DataFrame
    only_one: int = 0
    notes: tuple[str, ...] = ()

    def markdown(self) -> str:
        return render_compare(self)


def _report(path: Path) -> Report:
    file = path / "report.json"
    if not path.is_dir() or not file.is_file():
        raise HarnessError(
            "no report.json here" if path.is_dir() else "not a report directory",
            where=str(file if path.is_dir() else path),
            fix="pass two directories written by `harness gate --out DIR`",
        )
    return load_report(file)


def _gate_rows(ra: Report, rb: Report) -> list[dict[str, Any]]:
    ga, gb = {g.name: g for g in ra.gates}, {g.name: g for g in rb.gates}
    rows = []
    for name in dict.fromkeys([*ga, *gb]):
        a, b = ga.get(name), gb.get(name)
        row: dict[str, Any] = {
            "gate": name,
            "metric": (a or b).metric,
            "required": (a or b).required,
            "verdict_changed": a is None or b is None or a.verdict != b.verdict,
        }
        for side, g in (("a", a), ("b", b)):
            row[f"verdict_{side}"] = g.verdict if g else None
            for f in ("baseline", "candidate", "delta", "threshold"):
                row[f"{f}_{side}"] = getattr(g, f) if g else None
            row[f"ci_{side}"] = list(g.ci) if g and g.ci else None
        rows.append(row)
    return rows


def _items(a: Path, b: Path) -> tuple[Any, int, tuple[str, ...]]:
    import pandas as pd  # here, not at import (as in reports.items)

    empty = pd.DataFrame(columns=list(ITEM_COLUMNS))
    missing = [str(d) for d in (a, b) if not (d / PARQUET).is_file()]
    if missing:
        return empty, 0, (f"no {PARQUET} in {', '.join(missing)} (written before items tables): items not compared",)
    ia, ib = read_items(a), read_items(b)
    both = ia.merge(ib, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_one = int((both["_merge"] != "both").sum())
    both = both[both["_merge"] == "both"]

    def differs(col: str) -> Any:
        return both[f"{col}_a"].fillna("") != both[f"{col}_b"].fillna("")

    # a pair's status is the candidate's (both rows carry it): it differs on the candidate's row, not twice
    diff = both[differs("outcome") | (differs("status") & (both["variant"] == "candidate"))]
    out = pd.DataFrame(
        {
            **{k: diff[k] for k in KEY},
            "category": diff["category_b"].fillna(diff["category_a"]),
            "prompt": diff["prompt_b"],
            **{f"{c}_{s}": diff[f"{c}_{s}"] for c in ("outcome", "status", "score", "answer") for s in ("a", "b")},
        },
        columns=list(ITEM_COLUMNS),
    ).reset_index(drop=True)
    notes = (f"{only_one} item rows measured in only one of the runs (not compared)",) if only_one else ()
    return out, only_one, notes


def compare(a: str | Path, b: str | Path) -> Comparison:
    """Compare report directories `a` and `b` (each written by `harness gate --out`). A directory without
    report.json is bad input naming it; one without items.parquet compares its gates only (a note says so)."""
    import pandas as pd  # here, not at import: see `_items`

    a, b = Path(a), Path(b)
    ra, rb = _report(a), _report(b)
    gates = pd.DataFrame(_gate_rows(ra, rb), columns=list(GATE_COLUMNS))
    items, only_one, notes = _items(a, b)
    return Comparison(a, b, ra, rb, gates, items, only_one, notes)


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and x != x)  # pandas keeps a missing number as NaN


def _num(x: Any) -> str:
    if _missing(x):
        return "–"
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:.4g}"
    return str(x)


def _cell(x: Any, limit: int = 80) -> str:
    text = " ".join(_num(x).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ci(ci: Any) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if ci is not None and len(ci) == 2 else "–"


def _describe(side: str, path: Path, r: Report) -> str:
    what = r.candidate.get("describe") or r.candidate.get("path") or r.candidate.get("adapter") or "?"
    return f"- **{side}:** `{path}`: {r.verdict}, candidate {what}, created {r.created_at or '?'}"


def _records(df: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as dicts, every missing value (NaN, pd.NA) as None."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def render_compare(c: Comparison) -> str:
    """The comparison as Markdown: the two runs, each gate's verdict and change side by side, the differing items."""
    changed = int(c.gates["verdict_changed"].sum()) if len(c.gates) else 0
    out = [
        "# Comparison of two release reports",
        "",
        _describe("A", c.a, c.report_a),
        _describe("B", c.b, c.report_b),
        f"- **Verdicts:** {c.report_a.verdict} -> {c.report_b.verdict}; "
        + (f"{changed} gate verdict(s) changed" if changed else "no gate verdict changed"),
        *[f"- **Note:** {n}." for n in c.notes],
        "",
        "## Gates",
        "",
        "| gate | verdict A | verdict B | delta A | delta B | CI A | CI B | threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in _records(c.gates):
        mark = " ⚠️" if r["verdict_changed"] else ""
        threshold = r["threshold_a"] if _missing(r["threshold_b"]) else r["threshold_b"]
        out.append(
            f"| `{r['gate']}`{mark} | {_num(r['verdict_a'])} | {_num(r['verdict_b'])} | {_num(r['delta_a'])} | "
            f"{_num(r['delta_b'])} | {_ci(r['ci_a'])} | {_ci(r['ci_b'])} | {_num(threshold)} |"
        )
    n = len(c.items)
    out += ["", f"## Items whose outcome differs between the runs ({n})", ""]
    if not n:
        out.append("None: every item both runs measured has the same outcome and status in both.")
    else:
        out += [
            "| gate | measurement | item | variant | outcome A -> B | status A -> B | prompt |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in _records(c.items.head(MARKDOWN_ITEMS)):
            out.append(
                f"| `{r['gate']}` | {_cell(r['measurement'], 40)} | `{_cell(r['item_id'], 40)}` | {r['variant']} | "
                f"{_cell(r['outcome_a'] or '–')} -> {_cell(r['outcome_b'] or '–')} | "
                f"{_cell(r['status_a'])} -> {_cell(r['status_b'])} | {_cell(r['prompt'])} |"
            )
        if n > MARKDOWN_ITEMS:
            out += [
                "",
                f"{n - MARKDOWN_ITEMS} more not shown ({n} in all): `reports.compare.compare(A, B).items` holds them "
                "all, with both answers and scores.",
            ]
    return "\n".join(out) + "\n"


__all__ = ["FILE", "GATE_COLUMNS", "ITEM_COLUMNS", "Comparison", "compare", "render_compare"]
