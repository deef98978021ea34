"""Training-data handling: validation split, eval-set refusal, template diversity, curriculum, task prefixes."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.data import Dataset, Record, resolve_data_path
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file

MIN_TEMPLATES = 5


@dataclass(frozen=True)
class Split:
    train: tuple[Record, ...]
    valid: tuple[Record, ...]
    method: str  # "file" | "by source" | "random"
    seed: int


def split_train_valid(ds: Dataset, fraction: float, seed: int) -> Split:
    """Hold out `fraction` of rows, seeded; whole sources go to one side when rows carry a `source` field."""
    rng = random.Random(seed)
    n_valid = max(1, math.ceil(fraction * len(ds)))
    if len(ds) < 2:
        raise HarnessError(
            "need at least 2 rows to split off a validation set",
            where=str(ds.path),
            fix="add rows, or name a validation file with [fine_tune] valid",
        )
    sources = [r.meta.get("source") for r in ds.records]
    if all(s is not None for s in sources) and len(set(map(str, sources))) > 1:
        groups = sorted(set(map(str, sources)))
        rng.shuffle(groups)
        held: set[str] = set()
        count = Counter(map(str, sources))
        for g in groups:
            if sum(count[h] for h in held) >= n_valid or len(held) == len(groups) - 1:
                break
            held.add(g)
        valid = tuple(r for r in ds.records if str(r.meta["source"]) in held)
        train = tuple(r for r in ds.records if str(r.meta["source"]) not in held)
        return Split(train, valid, "by source", seed)
    idx = list(range(len(ds)))
    rng.shuffle(idx)
    chosen = set(idx[:n_valid])
    return Split(
        tuple(r for i, r in enumerate(ds.records) if i not in chosen),
        tuple(r for i, r in enumerate(ds.records) if i in chosen),
        "random",
        seed,
    )


def refuse_eval_sets(train: Dataset, eval_specs: list[str], base_dir: Path | None) -> None:
    """The runner never trains on a file that is also an eval set (same path or same content)."""
    for spec in eval_specs:
        path = resolve_data_path(spec, base_dir)
        if not path.is_file():
            continue
        if path.resolve() == train.path.resolve() or sha256_file(path) == train.sha256:
            raise HarnessError(
                f"the training file is also an eval set ({spec})",
                where=str(train.path),
                fix="train and evaluate on different files: a model gated on its own training data proves nothing",
            )


@dataclass(frozen=True)
class TemplateDiversity:
    count: int | None  # None when it could not be estimated
    method: str
    warning: str | None


def _user_prompt(r: Record) -> str:
    msgs = r.messages or ()
    return next((m["content"] for m in msgs if m["role"] == "user"), r.text or "")


def template_diversity(records: tuple[Record, ...] | list[Record]) -> TemplateDiversity:
    """Distinct instruction templates: the `template` field when rows have one; otherwise estimated.

    The estimate takes each prompt's lines that recur (digits masked) in other prompts as its template
    skeleton, and counts distinct skeletons. It cannot see a template whose only line also holds the
    item's own text; then it says so instead of guessing.
    """
    if records and all("template" in r.meta for r in records):
        n = len({str(r.meta["template"]) for r in records})
        method = "template field"
    else:
        lines = [[re.sub(r"\d+", "0", ln.strip()) for ln in _user_prompt(r).splitlines()] for r in records]
        freq = Counter(ln for ls in lines for ln in set(ls) if ln)
        skeletons = {tuple(ln for ln in ls if ln and freq[ln] > 1) for ls in lines}
        n = len(skeletons)
        method = "estimated from recurring prompt lines"
        if n > len(records) / 2 or skeletons == {()}:
            return TemplateDiversity(None, "not estimable (add a `template` field to rows)", None)
    warning = (
        f"only {n} distinct instruction template{'s' if n != 1 else ''} (fewer than {MIN_TEMPLATES}): "
        "the fine-tune may learn the phrasing instead of the task; vary how the instruction is asked"
        if n < MIN_TEMPLATES
        else None
    )
    return TemplateDiversity(n, method, warning)


def with_task_prefix(msgs: list[dict[str, str]], task: Any) -> list[dict[str, str]]:
    """Multi-task prefix: `[task] ` before the first user message."""
    out = [dict(m) for m in msgs]
    for m in out:
        if m["role"] == "user":
            m["content"] = f"[{task}] {m['content']}"
            break
    return out


def difficulty(tokenizer: Any, r: Record) -> int:
    """Curriculum difficulty: tokens in the whole example (prompt and answer). Longer is harder."""
    body = "\n".join(m["content"] for m in r.messages) if r.messages else (r.text or "")
    return len(tokenizer(body, add_special_tokens=False)["input_ids"])
