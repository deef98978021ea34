"""`report.html`: the release report as one self-contained page a person opens from disk.

Everything is inside the file: the pictures the run drew (`forest.png`, the reliability diagrams, the loss curve) as
base64 data URIs, the stylesheet and a few lines of vanilla JavaScript; a Content-Security-Policy forbids every
network request, so the page works from a file:// URL with no network. It is rendered by Jinja2 from
`templates/report.html.j2` with autoescaping on: every text of the report (prompts and answers above all) reaches the
page escaped.

Beyond report.md it shows, per gate, every measured item (the per-item table, `items.parquet`) with reference and
candidate answers side by side and the words that differ marked (a word diff computed here, handed to the template
as spans), filterable by status (lost / gained / same) and category; each gate that did not pass links to its
evidence, and each piece of evidence to its item's row. The page reads `?status=lost` (and `?category=...`,
`?measurement=...`, or `?GATE.status=...` for one gate) from its URL on load, so a link can open it filtered.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from gates.types import Example, GateResult
from harness.core.files import atomic_write_text
from reports.figures import COLOURS, statistical
from reports.markdown import _ci, _num, evidence_more
from reports.power import HEADER, power_rows
from reports.types import Report

if TYPE_CHECKING:
    import pandas

FILE = "report.html"
ITEMS_FILE = "items.parquet"  # the per-item table of the report directory (`harness.results.load`)
# plain text symbols, not emoji: a machine without an emoji font (a CI runner's Chromium) shows them too
ICONS = {"pass": "✓", "fail": "✗", "error": "⚠", "inconclusive": "?", "skip": "»", "n/a": "–"}
STATUS_ORDER = {"lost": 0, "gained": 1, "same": 2}

# one word, a run of white space, or one other character: white space stays inside the spans, so the page shows
# the answer exactly as it was (CSS `white-space: pre-wrap`)
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")

Span = tuple[str, str]  # (tag, text): tag "" (same in both), "del" (only in the reference), "ins" (only in the
# candidate) or "mark" (in both, but different words in the same place)


def word_diff(reference: str | None, candidate: str | None) -> tuple[list[Span], list[Span]]:
    """Both answers as spans for the template, from difflib's matching blocks over their words: the reference's
    words the candidate lacks are "del", the candidate's new words "ins", words replaced by others "mark" on both
    sides. A missing answer is no spans."""
    a, b = _TOKEN.findall(reference or ""), _TOKEN.findall(candidate or "")
    left: list[Span] = []
    right: list[Span] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            _add(left, "", a[i1:i2])
            _add(right, "", b[j1:j2])
        elif op == "delete":
            _add(left, "del", a[i1:i2])
        elif op == "insert":
            _add(right, "ins", b[j1:j2])
        else:
            _add(left, "mark", a[i1:i2])
            _add(right, "mark", b[j1:j2])
    return left, right


def _add(spans: list[Span], tag: str, tokens: list[str]) -> None:
    """Append `tokens` as spans joined to the previous span when its tag is the same; white space around a changed
    run is shown as unchanged (a marked blank is invisible)."""
    text = "".join(tokens)
    core = text.strip()
    if not tag or not core:
        parts = [("", text)]
    else:
        start = text.index(core)
        parts = [("", text[:start]), (tag, core), ("", text[start + len(core) :])]
    for t, part in parts:
        if not part:
            continue
        if spans and spans[-1][0] == t:
            spans[-1] = (t, spans[-1][1] + part)
        else:
            spans.append((t, part))


def data_uri(path: Path) -> str | None:
    """The PNG at `path` as a data URI for an <img> (None when the run drew none)."""
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _text(x: Any) -> str | None:
    return None if x is None else str(x)


@dataclass
class ItemRow:
    """One item of one measurement of a gate, reference and candidate side by side."""

    anchor: str
    item_id: str
    measurement: str
    category: str
    status: str
    prompt: str
    reference: list[Span]
    candidate: list[Span]
    reference_score: str
    candidate_score: str
    reference_outcome: str
    candidate_outcome: str
    change: str
    score_name: str
    change_value: float | None = None


@dataclass
class ItemsView:
    """A gate's per-item table and its filters."""

    rows: list[ItemRow]
    measurements: list[str]
    categories: list[str]
    statuses: list[str]
    counts: dict[str, int]
    has_answers: bool
    score_names: dict[str, str]  # measurement -> what its scores are
    anchors: dict[str, str] = field(default_factory=dict)  # item id -> its first row's anchor (evidence links)


def _records(items: pandas.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as dicts, every missing value (NaN, NA, None) as None."""
    frame = items.astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _outcome(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return "pass" if x else "fail"
    return str(x)


def item_views(items: pandas.DataFrame) -> dict[str, ItemsView]:
    """The long per-item table (one row per gate, measurement, item and variant; variant "base" is the reference)
    pivoted to one row per (gate, measurement, item) with both variants side by side, per gate; lost items first
    (the largest drop first), then gained, then the rest in the table's order."""
    pairs: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in _records(items):
        key = (str(r.get("gate")), str(r.get("measurement") or r.get("kind") or ""), str(r.get("item_id")))
        pairs.setdefault(key, {}).setdefault(str(r.get("variant")), r)
    by_gate: dict[str, list[ItemRow]] = {}
    for (gate, measurement, item_id), variants in pairs.items():
        ref, cand = variants.get("base", {}), variants.get("candidate", {})
        both = [ref, cand]

        def first(name: str, rows: list[dict[str, Any]] = both) -> Any:
            return next((r[name] for r in rows if r.get(name) is not None), None)

        left, right = word_diff(_text(ref.get("answer")), _text(cand.get("answer")))
        change = first("change")
        score_name = first("score_name") or "score"
        n = len(by_gate.setdefault(gate, []))
        by_gate[gate].append(
            ItemRow(
                anchor=f"item-{_slug(gate)}-{n}",
                item_id=item_id,
                measurement=measurement,
                category=str(first("category") or ""),
                status=str(first("status") or ""),
                prompt=str(first("prompt") or ""),
                reference=left,
                candidate=right,
                reference_score=_num(ref.get("score")),
                candidate_score=_num(cand.get("score")),
                reference_outcome=_outcome(ref.get("outcome")),
                candidate_outcome=_outcome(cand.get("outcome")),
                change="–" if change is None else f"{float(change):+.4g}",
                score_name=str(score_name),
                change_value=None if change is None else float(change),
            )
        )
    return {gate: _view(rows) for gate, rows in by_gate.items()}


def _view(rows: list[ItemRow]) -> ItemsView:
    def order(r: ItemRow) -> tuple[int, float]:
        rank = STATUS_ORDER.get(r.status, 3)
        size = abs(r.change_value) if r.change_value is not None and rank < 2 else 0.0
        return rank, -size

    rows = sorted(rows, key=order)
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUS_ORDER}
    anchors: dict[str, str] = {}
    for r in rows:
        anchors.setdefault(r.item_id, r.anchor)
    return ItemsView(
        rows=rows,
        measurements=sorted({r.measurement for r in rows}),
        categories=sorted({r.category for r in rows if r.category}),
        statuses=[s for s in STATUS_ORDER if counts[s]],
        counts={**counts, "all": len(rows)},
        has_answers=any(r.reference or r.candidate for r in rows),
        score_names={r.measurement: r.score_name for r in sorted(rows, key=lambda r: r.measurement)},
        anchors=anchors,
    )


@dataclass
class EvidenceRow:
    item_id: str
    prompt: str
    reference: list[Span]
    candidate: list[Span]
    note: str
    link: str | None


def _evidence(examples: Iterable[Example], anchors: Mapping[str, str]) -> list[EvidenceRow]:
    out = []
    for e in examples:
        if e.base_output is not None and e.candidate_output is not None:
            left, right = word_diff(e.base_output, e.candidate_output)
        else:  # scores (or one answer): nothing to compare word by word
            left = [("", e.base_output if e.base_output is not None else _num(e.base_score))]
            right = [("", e.candidate_output if e.candidate_output is not None else _num(e.candidate_score))]
        out.append(EvidenceRow(e.id, e.prompt, left, right, e.note, anchors.get(e.id)))
    return out


@dataclass
class GateView:
    """What the page shows of one gate."""

    gate: GateResult
    anchor: str
    icon: str
    colour: str
    ci: str
    numbers: dict[str, str]
    tables: list[Any]
    figure: str | None
    evidence: list[EvidenceRow]
    evidence_shown: str  # "5 of 12" when the gate shows the worst of more ("" when it shows them all)
    evidence_more: str  # how many more there are and where (the table below, or items.parquet); "" when none
    items: ItemsView | None
    evidence_anchor: str  # where "why it did not pass" leads: the worst examples, else every item, else the gate


def _gate_view(g: GateResult, out_dir: Path, items: Mapping[str, ItemsView] | None, tabled: set[str]) -> GateView:
    view = (items or {}).get(g.name)
    shown, total = len(g.evidence), g.evidence_total
    more = ""
    if total is not None and total > shown:
        more = (
            f"{total - shown} more not shown ({total} in all): every item of this gate is in the table below."
            if view
            else evidence_more(g, g.name in tabled).replace("`", "")
        )
    figure = data_uri(out_dir / f"{g.name}.png") if g.details.get("reliability") else None
    anchor = f"gate-{_slug(g.name)}"
    return GateView(
        gate=g,
        anchor=anchor,
        icon=ICONS.get(g.verdict, ""),
        colour=COLOURS.get(g.verdict, "#000000"),
        ci=_ci(g),
        numbers={k: _num(getattr(g, k)) for k in ("baseline", "candidate", "delta", "threshold")},
        tables=[t for t in g.tables if t.section == "gate"],
        figure=figure,
        evidence=_evidence(g.evidence, view.anchors if view else {}),
        evidence_shown=f"{shown} of {total}" if more else "",
        evidence_more=more,
        items=view,
        evidence_anchor=f"{anchor}-evidence" if g.evidence else f"{anchor}-items" if view else anchor,
    )


def _power(gates: Sequence[GateResult], reference: str) -> list[list[tuple[str, bool]]]:
    """The power table's rows (`reports.power`), Markdown emphasis turned into (text, strong) cells."""
    table = {g.name: g.details["power"] for g in gates if g.details.get("power") and g.verdict != "n/a"}
    rows = power_rows(table, reference)
    return [[(c.replace("`", "").replace("**", ""), c.startswith("**")) for c in row] for row in rows]


def _models(report: Report) -> list[tuple[str, str]]:
    c, ref = report.candidate, report.reference
    rows = [("Candidate", str(c.get("describe") or f"adapter {c.get('adapter')} (sha256 {c.get('adapter_sha256')})"))]
    if ref:
        rows.append(("Reference", str(ref.get("describe") or f"{ref.get('path')} ({ref.get('form')})")))
        if ref.get("registry"):
            reg = ref["registry"]
            rows.append(("Reference registry", f"{reg.get('dir')}, version {reg.get('version')}"))
    rows.append(("Base", str(c.get("base") or (ref or {}).get("base"))))
    return rows


def _training(report: Report, out_dir: Path) -> dict[str, Any] | None:
    t = report.manifest.get("training")
    if not isinstance(t, dict) or "error" in t:
        return None
    rows = [
        ("method / stage", f"{t.get('method')} / {t.get('stage')}"),
        ("steps", str(t.get("steps"))),
        ("final train / validation loss", f"{_num(t.get('train_loss'))} / {_num(t.get('valid_loss'))}"),
        ("validation loss of the base (step 0)", _num(t.get("valid_loss_start"))),
        ("seed", str(t.get("seed"))),
    ]
    return {"rows": rows, "curve": data_uri(out_dir / "loss_curve.png") if t.get("loss_curve") else None}


def _context(report: Report, items: pandas.DataFrame | None, out_dir: Path) -> dict[str, Any]:
    label = report.reference_label
    views = item_views(items) if items is not None else None
    tabled = set((report.manifest.get("items") or {}).get("gates") or ())  # the gates with rows in items.parquet
    gates = [_gate_view(g, out_dir, views, tabled) for g in report.gates]
    counts = {v: sum(1 for g in report.gates if g.verdict == v) for v in ICONS}
    if items is None:
        no_items = (
            f"No per-item tables: this report has no {ITEMS_FILE} (reports written before per-item tables have none; "
            "a run that could not build it says why in a note above). Re-run `harness gate` to get them."
        )
    else:
        no_items = None
    ships = [row for g in report.gates for t in g.tables if t.section == "ships" for row in t.rows]
    return {
        "report": report,
        "label": label,
        "passed": report.verdict == "pass",
        "models": _models(report),
        "summary": ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none",
        "gates": gates,
        "blocking": [v for v in gates if v.gate.blocks],
        "forest": data_uri(out_dir / "forest.png") if statistical(report.gates) else None,
        "power_header": HEADER,
        "power": _power(report.gates, label),
        "ships": ships,
        "training": _training(report, out_dir),
        "no_items": no_items,
        "manifest": json.dumps(report.manifest, indent=2, default=str),
        "colours": COLOURS,
    }


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_text(report: Report, items: pandas.DataFrame | None, out_dir: Path) -> str:
    """The page as text; the pictures are read from `out_dir` (a picture that is not there is left out)."""
    return _environment().get_template("report.html.j2").render(**_context(report, items, Path(out_dir)))


def render_html(report: Report, items: pandas.DataFrame | None, out_dir: Path, out: Path | None = None) -> Path:
    """Write `report.html` into `out_dir` (or to `out`), atomically, and return its path.

    Args:
        report: the release report (as report.json holds it).
        items: the per-item table (`harness.results.load`), or None for a report directory without one: the page
            then says why it has no per-item tables.
        out_dir: the report directory; the pictures the run drew there are inlined.
        out: another file to write instead of `out_dir/report.html`.
    """
    path = Path(out) if out is not None else Path(out_dir) / FILE
    atomic_write_text(path, html_text(report, items, Path(out_dir)))
    return path
