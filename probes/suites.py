"""Probe suites: JSONL items with an `id`, a `prompt` or `messages`, a `check` spec and an optional `category`.

HumanEval's problem format (`task_id`, `prompt`, `test`, `entry_point`) is read as is: the prompt is
asked as a chat turn and checked with `python_tests`. `.jsonl.gz` files are read too, and tables (`.csv`, `.tsv`,
`.parquet`, read with pandas) whose prompt column is named after `#` or found among the usual names
(`harmbench.csv#column=Behavior&category=SemanticCategory&check=refusal`): HarmBench's and XSTest's files as
they are published.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.core.data import clip, first_duplicate, iter_jsonl, resolve_data_path
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file, sha256_json
from probes.attacks import ATTACKS, wrap
from probes.checkers import SpecError, validate_spec

_HELP = (
    'each line: {"id": "...", "prompt": "..." (or "messages": [...]), "check": {"type": "contains", '
    '"value": "..."}}, or a HumanEval problem {"task_id", "prompt", "test", "entry_point"}'
)
HUMANEVAL_ASK = "Complete this Python function. Reply with the complete function in a Python code block.\n\n"


@dataclass(frozen=True)
class ProbeItem:
    id: str
    line: int
    messages: tuple[dict[str, str], ...]
    check: dict[str, Any] = field(compare=False)
    category: str = field(default="", compare=False)

    def preview(self, limit: int = 200) -> str:
        text = " | ".join(m["content"] for m in self.messages)
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    sha256: str
    items: tuple[ProbeItem, ...]
    needs_chat_template: bool = True

    def __len__(self) -> int:
        return len(self.items)


def _item(
    obj: Any, where: str, line: int, check_optional: bool = False, default_check: dict[str, Any] | None = None
) -> ProbeItem:
    if not isinstance(obj, dict):
        raise HarnessError("expected a JSON object", where=where, fix=_HELP)
    if {"task_id", "prompt", "test", "entry_point"} <= obj.keys():  # HumanEval
        check = {
            "type": "python_tests",
            "prompt": obj["prompt"],
            "tests": obj["test"],
            "entry_point": obj["entry_point"],
        }
        return ProbeItem(
            str(obj["task_id"]), line, ({"role": "user", "content": HUMANEVAL_ASK + obj["prompt"]},), check
        )
    if "check" not in obj and default_check is not None:
        obj = {**obj, "check": default_check}
    if "check" not in obj and not check_optional:
        raise HarnessError('probe item has no "check"', where=where, fix=_HELP)
    try:
        check = validate_spec(obj.get("check", {"type": "none"}))
    except SpecError as e:
        raise HarnessError(f"bad check spec: {e}", where=where, fix=_HELP) from None
    if isinstance(obj.get("messages"), list) and obj["messages"]:
        msgs = obj["messages"]
    elif isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        msgs = [{"role": "user", "content": obj["prompt"]}]
    elif isinstance(obj.get("prompt"), list) and obj["prompt"]:
        msgs = obj["prompt"]
    else:
        raise HarnessError('probe item needs a non-empty "prompt" or "messages"', where=where, fix=_HELP)
    if not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in msgs
    ):
        raise HarnessError('messages must be objects with string "role" and "content"', where=where, fix=_HELP)
    if msgs[-1]["role"] == "assistant":
        raise HarnessError(
            "the last message is the assistant's: a probe asks, the model answers",
            where=where,
            fix="end the messages with the user's turn",
        )
    category = obj.get("category")
    return ProbeItem(
        str(obj.get("id", f"line-{line}")),
        line,
        tuple({"role": m["role"], "content": m["content"]} for m in msgs),
        check,
        str(category) if category is not None else "",
    )


TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
PROMPT_COLUMNS = ("prompt", "Behavior", "behavior", "goal", "question", "instruction", "forbidden_prompt", "text")
CATEGORY_COLUMNS = ("category", "SemanticCategory", "Category", "type", "harm_category")
ID_COLUMNS = ("id", "BehaviorID", "ID")
_OPTIONS = ("column", "category", "check", "attack")


def _attacked(item: ProbeItem, attack: str, where: str) -> ProbeItem:
    """The item with its last user turn wrapped by the named jailbreak template (`probes.attacks`)."""
    if attack not in ATTACKS:
        raise HarnessError(
            f"unknown attack {attack!r}", where=where, fix=f"use one of {', '.join(ATTACKS)} (probes/attacks.py)"
        )
    msgs = list(item.messages)
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    msgs[last] = {"role": "user", "content": wrap(attack, msgs[last]["content"])}
    return replace(item, messages=tuple(msgs))


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`path#column=NAME&category=NAME&check=TYPE` -> the path and its reading options (a table's columns, the
    check of rows that carry none)."""
    path, sep, frag = spec.partition("#")
    if not sep:
        return spec, {}
    opts = {}
    for part in filter(None, frag.split("&")):
        k, eq, v = part.partition("=")
        if not eq or k not in _OPTIONS or not v:
            raise HarnessError(
                f"bad reading option {part!r} after '#' in {spec!r}",
                fix=f"write path#key=value&key=value with keys among {', '.join(_OPTIONS)}",
            )
        opts[k] = v
    return path, opts


def _pick(columns: list[str], named: str | None, usual: tuple[str, ...], what: str, where: str) -> str | None:
    if named is not None:
        if named not in columns:
            raise HarnessError(
                f"no {what} column {named!r}; the columns are {', '.join(map(repr, columns))}",
                where=where,
                fix=f"name one of them as the {what} column",
            )
        return named
    return next((c for c in usual if c in columns), None)


def _table_rows(path: Path, opts: dict[str, str], where: str) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a CSV/TSV/Parquet table as probe rows (line: the file's line for text tables, else the row)."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except Exception as e:  # pandas' and pyarrow's parse errors are many types
        raise HarnessError(f"cannot read the table: {e}", where=where, fix="check the file is a valid table") from None
    columns = [str(c) for c in df.columns]
    prompt = _pick(columns, opts.get("column"), PROMPT_COLUMNS, "prompt", where)
    if prompt is None:
        raise HarnessError(
            f"no prompt column among {', '.join(map(repr, columns))}",
            where=where,
            fix=f'name it: column = "NAME" under the gate (the usual names {", ".join(PROMPT_COLUMNS)} are found)',
        )
    category = _pick(columns, opts.get("category"), CATEGORY_COLUMNS, "category", where)
    ident = next((c for c in ID_COLUMNS if c in columns), None)
    first = 2 if path.suffix != ".parquet" else 1  # a text table's first data row is its line 2
    rows = []
    for i, rec in enumerate(df.to_dict("records")):
        row = {"id": str(rec[ident]) if ident else f"{path.stem}-{i}", "prompt": rec[prompt]}
        if category is not None and rec[category] is not None:
            row["category"] = str(rec[category])
        if not isinstance(row["prompt"], str) or not row["prompt"].strip():
            raise HarnessError(
                f"empty {prompt!r} cell", where=f"{path}:{first + i}", fix="fill it in or remove the row"
            )
        rows.append((first + i, row))
    return rows


def load_suite(
    spec: str, base_dir: Path | None = None, *, key: str | None = None, check_optional: bool = False
) -> Suite:
    """Read a probe suite; with `check_optional` (prompts for a judge), items may omit `check`. Options after
    `#` (`split_spec`) name a table's columns and the check of rows that carry none."""
    spec_path, opts = split_spec(spec)
    path = resolve_data_path(spec_path, base_dir)
    where = str(path) + (f" (config key {key})" if key else "")
    if not path.is_file():
        raise HarnessError(
            "probe suite not found",
            where=where,
            fix="check the path; relative paths are resolved from the release config's folder",
        )
    default = {"type": opts["check"]} if "check" in opts else None
    rows = _table_rows(path, opts, where) if path.suffix in TABLE_SUFFIXES else iter_jsonl(path, _HELP)
    items = [_item(obj, f"{path}:{line_no}", line_no, check_optional, default) for line_no, obj in rows]
    if not items:
        raise HarnessError("probe suite has no items", where=where, fix=_HELP)
    if "attack" in opts:
        items = [_attacked(i, opts["attack"], where) for i in items]
    dup = first_duplicate([i.id for i in items])
    if dup is not None:
        raise HarnessError(f"duplicate id {clip(dup)!r}", where=where, fix='give every item a unique "id"')
    sha = sha256_file(path) if not opts else sha256_json([sha256_file(path), opts])  # the options change the rows
    return Suite(path, spec if spec.startswith("builtin:") else path.name, sha, tuple(items))
