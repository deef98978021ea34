"""Content hashes: files, directories, canonical JSON.

File hashes are remembered in a small index keyed by (path, size, mtime_ns, inode) so a re-run does not
re-read hundreds of megabytes of unchanged weights. `promote` bypasses the index (`fresh=True`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

from harness.core.files import atomic_write_text
from harness.core.paths import cache_root

_CHUNK = 1 << 20
_INDEX_LIMIT = 4096
_lock = threading.Lock()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object in canonical form (sorted keys, no spaces)."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode())


def _index_path() -> Path:
    return cache_root() / "file-hashes.json"


def _read_index() -> dict[str, str]:
    try:
        return json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}


def sha256_file(path: str | os.PathLike, *, fresh: bool = False) -> str:
    """sha256 of a file's bytes; served from the index when the file is unchanged on disk."""
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    if not fresh:
        cached = _read_index().get(key)
        if cached:
            return cached
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        index = _read_index()
        index[key] = digest
        while len(index) > _INDEX_LIMIT:  # oldest entries first (dicts keep insertion order)
            index.pop(next(iter(index)))
        try:
            atomic_write_text(_index_path(), json.dumps(index))
        except OSError:
            pass  # the index is an optimisation; a read-only cache must not fail a run
    return digest


def list_files(directory: Path) -> list[Path]:
    """Regular files under `directory`, sorted, hidden files and folders skipped."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                out.append(Path(root) / name)
    return out


def sha256_dir(directory: str | os.PathLike, *, names: list[str] | None = None, fresh: bool = False) -> str:
    """Hash of a directory: its files' relative paths and contents (only `names` when given)."""
    d = Path(directory)
    files = [d / n for n in names if (d / n).is_file()] if names else list_files(d)
    entries = [[f.relative_to(d).as_posix(), sha256_file(f, fresh=fresh)] for f in files]
    return sha256_json(entries)


@cache
def source_sha256(module: str) -> str:
    """The hash of a module's source file (part of a measurement's cache key: changed code, new measurement)."""
    spec = importlib.util.find_spec(module)
    return sha256_file(spec.origin) if spec and spec.origin else module
