"""Content-addressed measurement cache with atomic writes, shared safely by processes.

A key is the sha256 of everything that can change a measurement (model fingerprint, data hash,
measurement options, code version). A value is JSON. Writes go to a temporary file in the same
directory and are renamed into place, so a killed run never leaves a half-written entry.

Several runs may share one cache (parallel CI jobs gating candidates against the same base, pytest
workers): a run claims a key before measuring it (an advisory `flock` on `<key>.lock`, released by the
kernel if the process dies), so a second run asking for the same measurement meanwhile measures
something else first and then waits for the first one's value instead of measuring it again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs sharing a cache may measure a key twice
    fcntl = None  # type: ignore[assignment]

from harness.core.files import atomic_write_text
from harness.core.hashing import sha256_json

__all__ = ["MEASURE_VERSION", "MeasurementCache", "atomic_write_text"]

# bump when a measurement's definition changes, so old entries are never served
MEASURE_VERSION = 1


def measurement_key(kind: str, *, model: Any, data: str, options: Any, code: str) -> str:
    """The one cache key of every measurement: what was measured (`kind`), on which model (its identity or
    fingerprint), on which data (its hash), how (the options that can change the result) and by which code (the
    measuring modules' source hash). Bumping MEASURE_VERSION retires every entry."""
    parts = {"kind": kind, "model": model, "data": data, "options": options, "code": code}
    return sha256_json({"measure_version": MEASURE_VERSION, **parts})


class MeasurementCache:
    """A directory of `<key>.json` files; `hits` and `misses` count this run's look-ups."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def peek(self, key: str) -> Any | None:
        """The value if cached, without counting a hit or a miss (planning looks; measuring counts)."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def get(self, key: str) -> Any | None:
        try:
            value = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        atomic_write_text(self._path(key), json.dumps(value))

    @contextlib.contextmanager
    def claim(self, key: str, *, wait: bool) -> Iterator[bool]:
        """Hold `key` while measuring it: yields True once this process holds it, False at once (with `wait`
        off) when another process does. Check the cache again after a claim: the holder may have just put
        the value. The lock file goes when the claim ends (a run that opened it meanwhile finds the value)."""
        if fcntl is None:
            yield True
            return
        path = self._path(key).with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
        finally:
            os.close(fd)
