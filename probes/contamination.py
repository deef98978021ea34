"""Contamination of eval sets by training data, and duplicates inside a data set (serialisable results)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, MeasureRequest, as_is, kind, to_dict
from probes.overlap import FuzzyIndex, Match, NgramIndex, TextSet, fuzzy_matches, normalize, read_text_set

SNIPPET = 160


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


@dataclass(frozen=True)
class EvalSetOverlap:
    spec: str
    name: str
    items: int
    matches: tuple[Match, ...]  # one per contaminated eval item (the strongest evidence)

    @property
    def contaminated_ids(self) -> list[str]:
        return [m.eval_id for m in self.matches]

    @property
    def share(self) -> float:
        return len(self.matches) / self.items if self.items else 0.0


@dataclass(frozen=True)
class ContaminationRun:
    n: int
    fuzzy_cutoff: float
    train: tuple[dict[str, Any], ...]  # spec, name, sha256, items
    evals: tuple[EvalSetOverlap, ...]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContaminationRun:
        evals = tuple(
            EvalSetOverlap(e["spec"], e["name"], e["items"], tuple(Match(**m) for m in e["matches"]))
            for e in d["evals"]
        )
        return cls(d["n"], d["fuzzy_cutoff"], tuple(d["train"]), evals, d.get("seconds", 0.0))


def contamination(
    evals: list[TextSet], trains: list[TextSet], *, n: int = 13, fuzzy_cutoff: float = 90.0, min_share: float = 0.5
) -> ContaminationRun:
    """Each eval item against all training items: exact n-gram overlap first, fuzzy for the rest."""
    import time

    t0 = time.perf_counter()
    train_items = [(t.name, it.id, it.tokens) for t in trains for it in t.items]
    train_text = {(t.name, it.id): it.text for t in trains for it in t.items}
    ngrams = NgramIndex(train_items, n)
    fuzzy = FuzzyIndex(train_items)
    results = []
    for ev in evals:
        matches: dict[str, Match] = {}
        toks = {it.id: it.tokens for it in ev.items}
        text = {it.id: it.text for it in ev.items}
        for it in ev.items:
            share, ref = ngrams.find(toks[it.id])
            if ref is not None:
                s, tid = ngrams.refs[ref]
                matches[it.id] = Match(
                    it.id, tid, s, "exact", round(share, 4), _snip(it.text), _snip(train_text[(s, tid)])
                )
        rest = [(it.id, toks[it.id]) for it in ev.items if it.id not in matches]
        for qi, ti, score in fuzzy_matches(rest, fuzzy, cutoff=fuzzy_cutoff, min_share=min_share):
            eid = rest[qi][0]
            s, tid = fuzzy.refs[ti]
            matches[eid] = Match(eid, tid, s, "fuzzy", round(score, 2), _snip(text[eid]), _snip(train_text[(s, tid)]))
        order = {it.id: i for i, it in enumerate(ev.items)}
        results.append(
            EvalSetOverlap(
                ev.spec, ev.name, len(ev.items), tuple(sorted(matches.values(), key=lambda m: order[m.eval_id]))
            )
        )
    return ContaminationRun(
        n,
        fuzzy_cutoff,
        tuple({"spec": t.spec, "name": t.name, "sha256": t.sha256, "items": len(t.items)} for t in trains),
        tuple(results),
        round(time.perf_counter() - t0, 3),
    )


@dataclass(frozen=True)
class Duplicates:
    exact_groups: tuple[tuple[str, ...], ...]  # ids whose normalised text is identical (first one kept by dedup)
    near_pairs: tuple[tuple[str, str, float], ...]  # (id, id, score) at or above the cut-off, not exact
    cutoff: float = 90.0
    items: int = 0
    drop_lines: tuple[int, ...] = field(default=())  # lines a dedup removes: later exact copies, later near copies
    exact_lines: tuple[int, ...] = field(default=())  # the exact copies among them

    @property
    def exact_extra(self) -> int:
        return sum(len(g) - 1 for g in self.exact_groups)


def duplicates(ts: TextSet, *, cutoff: float = 90.0, min_share: float = 0.5) -> Duplicates:
    """Exact duplicates (same normalised text) and near duplicates (fuzzy, each pair once) in one data set."""
    groups: dict[str, list[Any]] = {}
    for it in ts.items:
        key = hashlib.sha256(" ".join(normalize(it.text)).encode()).hexdigest()
        groups.setdefault(key, []).append(it)
    exact = [g for g in groups.values() if len(g) > 1]
    exact_lines = {it.line for g in exact for it in g[1:]}
    firsts = [it for it in ts.items if it.line not in exact_lines]
    items = [(ts.name, it.id, it.tokens) for it in firsts]
    index = FuzzyIndex(items)
    queries = [(iid, toks) for _, iid, toks in items]
    near, near_lines = [], set()
    for qi, ti, score in fuzzy_matches(queries, index, cutoff=cutoff, min_share=min_share, exclude_self=True):
        near.append((firsts[qi].id, firsts[ti].id, round(score, 2)))
        near_lines.add(firsts[ti].line)  # the later row of the pair goes
    return Duplicates(
        tuple(tuple(it.id for it in g) for g in exact),
        tuple(near),
        cutoff,
        len(ts.items),
        tuple(sorted(exact_lines | near_lines)),
        tuple(sorted(exact_lines)),
    )


# -- the `contamination` measurement kind --------------------------------------------------------------------


def _contamination_preflight(req: MeasureRequest, base_dir: Path | None) -> None:
    o = req.opts
    if not o["train"]:
        raise HarnessError(
            "the contamination gate has no training data to check against",
            where="[gates.contamination] train",
            fix='set train = "path/to/train.jsonl", add a [fine_tune] section, or gate an adapter written by '
            "`harness train` (its training_manifest.json names its data)",
        )
    if not o["evals"]:
        raise HarnessError(
            "the contamination gate has no eval set to check",
            where="[gates.contamination] data",
            fix='set data = "path/to/eval.jsonl" (or enable other gates: their data is checked too)',
        )


@kind(  # about the data, not a model: cheap, never cached
    "contamination",
    load=as_is,
    dump=to_dict,
    load_data=None,
    cached=False,
    preflight=_contamination_preflight,
)
def _contamination_kind(call: MeasureCall) -> ContaminationRun:
    o, base_dir = call.options, call.env.base_dir
    evals = [read_text_set(s, base_dir, key="[gates.contamination] data") for s in o["evals"]]
    train = [read_text_set(s, base_dir, key="[gates.contamination] train") for s in o["train"]]
    return contamination(evals, train, n=o["n"], fuzzy_cutoff=o["fuzzy_cutoff"])
