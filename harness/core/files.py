"""Files: writes that never leave a half-written file (a temporary file in the same directory, renamed into
place), and UTF-8 reads whose failure names the line and the fix."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from harness.core.errors import HarnessError

__all__ = ["BOM", "UTF8_FIX", "atomic_write_text", "read_utf8", "tomllib"]


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


BOM = b"\xef\xbb\xbf"
UTF8_FIX = "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`); a binary file cannot be read here"


def read_utf8(path: Path, *, what: str, fix_bom: str | None = None) -> str:
    """The text of `path` (a `what`, e.g. "release config"), read as UTF-8. Another encoding is bad input naming
    the line and column of the first byte that is not UTF-8; a byte-order mark is named too, and refused unless
    `fix_bom` is None (then it is dropped: data files saved by spreadsheet programs often carry one)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise HarnessError(f"cannot read the {what}: {e.strerror or e}", where=str(path)) from None
    if raw.startswith(BOM):
        if fix_bom is not None:
            raise HarnessError(
                f"the {what} starts with a UTF-8 byte-order mark (BOM, bytes EF BB BF), which it may not hold",
                where=f"{path}:1",
                fix=fix_bom,
            )
        raw = raw[len(BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise HarnessError(
            f"the {what} is not UTF-8 text: byte 0x{raw[e.start]:02x} at line {line}, column {col} "
            f"(byte offset {e.start}) cannot be decoded",
            where=f"{path}:{line}",
            fix=UTF8_FIX,
        ) from None
