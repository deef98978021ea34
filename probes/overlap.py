"""Train/eval overlap: exact n-gram overlap (lm-evaluation-harness's normalisation) and fuzzy matching with
rapidfuzz behind a cheap prefilter; the same two methods find duplicates inside one data set.

Normalisation: lower-case, punctuation replaced by spaces, whitespace tokens. An eval item is exactly
contaminated when any of its n-grams (n = 13 by default) occurs in the training data; items shorter than
n tokens are contaminated when their whole token sequence occurs in a training item. The share of the
item's n-grams that occur is reported too.

Fuzzy: `rapidfuzz.fuzz.token_sort_ratio` on the normalised texts (word order does not matter, so swapped
and re-punctuated copies score ~100) with a score cut-off. The prefilter keeps, for each eval item, only
training items that share enough of its informative tokens (an inverted index over tokens that are rare
in the training data), so the scorer runs on a few candidates instead of every pair.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.data import empty_fix, iter_jsonl, read_txt, resolve_data_path
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalize(text: str) -> list[str]:
    return _PUNCT.sub(" ", text.lower()).split()


def _contents(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return []


def row_text(obj: dict[str, Any]) -> str:
    """Everything a row says: text, or its messages / prompt and completion (HumanEval: prompt and tests; preference
    pairs: both answers)."""
    parts: list[str] = []
    for key in ("text", "messages", "prompt", "completion", "chosen", "rejected", "canonical_solution"):
        parts += _contents(obj.get(key))
    return "\n".join(parts)


@dataclass(frozen=True)
class TextItem:
    id: str
    line: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def tokens(self) -> list[str]:
        return normalize(self.text)


@dataclass(frozen=True)
class TextSet:
    spec: str
    name: str
    path: Path
    sha256: str
    items: tuple[TextItem, ...]


def read_text_set(spec: str, base_dir: Path | None = None, *, key: str | None = None) -> TextSet:
    """Any data file the harness reads (training rows, eval rows, probe suites, HumanEval, .txt) as texts."""
    path = resolve_data_path(spec, base_dir)
    where = str(path) + (f" (config key {key})" if key else "")
    if not path.is_file():
        raise HarnessError("data file not found", where=where, fix="check the path (relative to the config's folder)")
    items: list[TextItem] = []
    if path.suffix == ".txt":  # documents split as every other reader splits them (same ids)
        items = [TextItem(r.id, r.line, r.text or "") for r in read_txt(path)]
    else:
        for line_no, obj in iter_jsonl(path, "one JSON object per line"):
            if not isinstance(obj, dict):
                raise HarnessError("expected a JSON object", where=f"{path}:{line_no}", fix="one object a line")
            text = row_text(obj)
            if not text.strip():
                raise HarnessError(
                    "row has no text to compare (no text, messages, prompt or completion)",
                    where=f"{path}:{line_no}",
                    fix='give every row "text", "messages" or "prompt"/"completion"',
                )
            rid = str(obj.get("id", obj.get("task_id", f"line-{line_no}")))
            meta = {k: v for k, v in obj.items() if k in ("template", "task", "source", "policy")}
            items.append(TextItem(rid, line_no, text, meta))
    if not items:
        raise HarnessError("data file has no rows", where=where, fix=empty_fix(path))
    name = spec if spec.startswith("builtin:") else path.name
    return TextSet(spec, name, path, sha256_file(path), tuple(items))


# ------------------------------------------------------------------ exact n-gram overlap


@dataclass(frozen=True)
class Match:
    """An eval item found in training: which training item, by which method, how strongly."""

    eval_id: str
    train_id: str
    train_set: str
    method: str  # "exact" | "fuzzy"
    score: float  # exact: share of the eval item's n-grams found in training (1.0 for a whole short item); fuzzy: 0-100
    eval_text: str = ""
    train_text: str = ""


def common_tokens(token_lists: list[list[str]], max_df: float) -> set[str]:
    """Tokens in more than `max_df` of the items (at least 3): template and function words."""
    df: Counter[str] = Counter()
    for toks in token_lists:
        df.update(set(toks))
    limit = max(3, int(max_df * len(token_lists)))
    return {t for t, c in df.items() if c > limit}


class NgramIndex:
    """Every informative n-gram of the training items (first occurrence kept), and their joined token text
    for items shorter than n.

    An n-gram made only of template words is no evidence of a copy: with templated training data every eval
    item shares the template's n-grams. So an n-gram counts only when at least `min_informative` of its
    tokens are not common (in more than `max_df` of the training items); for free text nearly every token
    is informative and this is the plain 13-gram rule."""

    def __init__(
        self, items: Iterable[tuple[str, str, list[str]]], n: int, *, max_df: float = 0.03, min_informative: int = 3
    ):
        items = list(items)
        self.n, self.min_informative = n, min_informative
        self.common = common_tokens([t for _, _, t in items], max_df)
        self.grams: dict[int, int] = {}
        self.refs: list[tuple[str, str]] = []  # (set name, item id)
        joined: list[str] = []
        for set_name, item_id, tokens in items:
            ref = len(self.refs)
            self.refs.append((set_name, item_id))
            for gram in self._grams(tokens):
                self.grams.setdefault(hash(gram), ref)
            joined.append(" " + " ".join(tokens) + " ")
        self._joined = joined

    def _grams(self, tokens: list[str]) -> list[str | None]:
        """The item's n-grams; None for those with too few informative tokens (not counted either way)."""
        informative = [t not in self.common for t in tokens]
        out: list[str | None] = []
        run = sum(informative[: self.n - 1])
        for i in range(len(tokens) - self.n + 1):
            run += informative[i + self.n - 1]
            out.append(" ".join(tokens[i : i + self.n]) if run >= self.min_informative else None)
            run -= informative[i]
        return out

    def find(self, tokens: list[str]) -> tuple[float, int | None]:
        """(share of the item's informative n-grams found in training, the training item matched most)."""
        if len(tokens) < self.n:  # a short item counts when all of it occurs inside one training item
            if sum(t not in self.common for t in tokens) < min(self.min_informative, len(tokens)) or not tokens:
                return 0.0, None
            needle = " " + " ".join(tokens) + " "
            hit = next((i for i, hay in enumerate(self._joined) if needle in hay), None)
            return (1.0, hit) if hit is not None else (0.0, None)
        grams = [g for g in self._grams(tokens) if g is not None]
        if not grams:
            return 0.0, None
        found = [h for g in grams if (h := self.grams.get(hash(g))) is not None]
        return len(found) / len(grams), (Counter(found).most_common(1)[0][0] if found else None)


# ------------------------------------------------------------------ fuzzy matching with a prefilter


class FuzzyIndex:
    """Training texts for fuzzy lookup: an inverted index over informative tokens picks candidates."""

    def __init__(self, items: list[tuple[str, str, list[str]]], *, max_df: float = 0.05):
        self.refs = [(s, i) for s, i, _ in items]
        self.texts = [" ".join(t) for _, _, t in items]
        self.sizes = [len(set(t)) for _, _, t in items]
        df: Counter[str] = Counter()
        for _, _, toks in items:
            df.update(set(toks))
        limit = max(2, int(max_df * len(items)))
        self.common = {t for t, c in df.items() if c > limit}  # template words: no evidence of a copy
        self.postings: dict[str, list[int]] = defaultdict(list)
        for idx, (_, _, toks) in enumerate(items):
            for t in set(toks) - self.common:
                self.postings[t].append(idx)

    def candidates(self, tokens: list[str], min_share: float) -> list[int]:
        """Training items sharing at least `min_share` of the query's informative tokens (all items when the
        query has none: then every candidate is scored, which is rare and still correct)."""
        rare = set(tokens) - self.common
        if not rare:
            return list(range(len(self.texts)))
        counts: Counter[int] = Counter()
        for t in rare:
            counts.update(self.postings.get(t, ()))
        need = max(1, int(min_share * len(rare)))
        return [i for i, c in counts.items() if c >= need]


def fuzzy_matches(
    queries: list[tuple[str, list[str]]],
    index: FuzzyIndex,
    *,
    cutoff: float,
    min_share: float = 0.5,
    exclude_self: bool = False,
    workers: int = -1,
) -> list[tuple[int, int, float]]:
    """(query index, best training index, score) for every query whose best score is >= cutoff."""
    from rapidfuzz import fuzz, process

    out = []
    for qi, (_, toks) in enumerate(queries):
        cand = index.candidates(toks, min_share)
        if exclude_self:
            cand = [c for c in cand if c > qi]  # within one set: each pair once
        if not cand:
            continue
        query = " ".join(toks)
        if len(cand) > 256:  # many candidates: one vectorised call on all cores
            scores = process.cdist(
                [query],
                [index.texts[c] for c in cand],
                scorer=fuzz.token_sort_ratio,
                score_cutoff=cutoff,
                workers=workers,
            )[0]
            best = int(scores.argmax())
            if scores[best] >= cutoff:
                out.append((qi, cand[best], float(scores[best])))
            continue
        hit = process.extractOne(
            query, [index.texts[c] for c in cand], scorer=fuzz.token_sort_ratio, score_cutoff=cutoff
        )
        if hit is not None:
            out.append((qi, cand[hit[2]], float(hit[1])))
    return out
