"""The release registry `harness promote` writes: numbered versions, one of them current ("the champion").

    REG/registry.json    {"current": N | null, "events": [{"action": "promote" | "rollback", "version": N,
                          "from": M | null, "at": ISO time, "by": user, ("forced": true)}]}
    REG/vN/model/        the promoted candidate: a PEFT adapter directory or a full model directory
    REG/vN/PROMOTED.json what was promoted, from which report, by whom, when
    REG/vN/...           the gating report (report.json, report.md), its config, the release bundle

A version is written once, in a staging directory inside REG renamed into place, and never changed or deleted
afterwards; "current" moves (promote, rollback) and every move is an event in registry.json.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.files import atomic_write_text

STATE = "registry.json"
PROMOTED = "PROMOTED.json"
MODEL = "model"
PREFIX = "registry:"
_VERSION_DIR = re.compile(r"v(\d+)")
_FIX_EMPTY = "promote a release first with `harness promote --report R --to {dir}`"


@dataclass(frozen=True)
class Version:
    """One promoted release, as its `PROMOTED.json` records it."""

    registry: Path  # REG
    number: int
    dir: Path  # REG/vN
    model: Path  # REG/vN/model: an adapter directory or a full model directory
    form: str  # adapter | full
    sha256: str  # harness.core.hashing.sha256_dir of `model`, checked against the gated one when promoted
    base: str | None
    promoted_at: str
    promoted_by: str
    verdict: str
    forced: bool  # promoted with --force although the champion had moved since gating
    reference: dict[str, Any] | None  # what the release was gated against (the report's `reference`)

    @property
    def label(self) -> str:
        return f"v{self.number} ({self.form}, sha256 {self.sha256[:12]})"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def user() -> str:
    """Who is promoting: the login name, else $USER, else "unknown" (a container may have no passwd entry)."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError where no name is known
        return os.environ.get("USER") or "unknown"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HarnessError(
            f"unreadable registry file ({type(e).__name__}: {e})",
            where=str(path),
            fix="the registry is written only by `harness promote` and `harness registry rollback`; restore this file",
        ) from None
    if not isinstance(data, dict):
        raise HarnessError("not a registry file (not a JSON object)", where=str(path))
    return data


def state(reg: Path) -> dict[str, Any]:
    """`registry.json`: {"current": N | None, "events": [...]}; an empty state where there is none yet."""
    path = Path(reg) / STATE
    if not path.is_file():
        return {"current": None, "events": []}
    data = _read_json(path)
    return {"current": data.get("current"), "events": list(data.get("events") or [])}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _share(root: Path) -> None:
    """Give `root` and everything under it the modes the umask allows (temporary files and directories are made
    private to their owner; a registry is read by the whole team)."""
    mask = _umask()
    if not root.is_dir():
        os.chmod(root, 0o666 & ~mask)
        return
    os.chmod(root, 0o777 & ~mask)
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)


def _write_state(reg: Path, st: dict[str, Any]) -> None:
    atomic_write_text(Path(reg) / STATE, json.dumps(st, indent=2) + "\n")
    _share(Path(reg) / STATE)


def _load(reg: Path, vdir: Path, number: int) -> Version:
    p = _read_json(vdir / PROMOTED)
    return Version(
        registry=reg,
        number=number,
        dir=vdir,
        model=vdir / MODEL,
        form=p.get("form", "adapter"),
        sha256=p.get("sha256") or p.get("adapter_sha256", ""),
        base=p.get("base"),
        promoted_at=p.get("promoted_at", ""),
        promoted_by=p.get("promoted_by", ""),
        verdict=p.get("verdict", ""),
        forced=bool(p.get("forced", False)),
        reference=p.get("reference"),
    )


def _numbers(reg: Path) -> list[int]:
    """Numbers of the version directories in REG (complete or not), ascending."""
    if not reg.is_dir():
        return []
    return sorted(int(m.group(1)) for d in reg.iterdir() if d.is_dir() and (m := _VERSION_DIR.fullmatch(d.name)))


def versions(reg: Path) -> list[Version]:
    """Every version promoted into `reg`, oldest first ([] where there is no registry)."""
    reg = Path(reg)
    return [_load(reg, reg / f"v{n}", n) for n in _numbers(reg) if (reg / f"v{n}" / PROMOTED).is_file()]


def version(reg: Path, number: int) -> Version | None:
    reg = Path(reg)
    vdir = reg / f"v{number}"
    return _load(reg, vdir, number) if (vdir / PROMOTED).is_file() else None


def current(reg: Path) -> Version | None:
    """The current version ("the champion"), or None where nothing was promoted yet."""
    reg = Path(reg)
    n = state(reg)["current"]
    if n is None:
        return None
    v = version(reg, int(n))
    if v is None:
        raise HarnessError(
            f"registry.json names v{n} as current, but {reg / f'v{n}'} is missing or incomplete",
            where=str(reg / STATE),
            fix="versions are never deleted: restore that directory from a backup",
        )
    return v


def exists(reg: Path) -> bool:
    return (Path(reg) / STATE).is_file()


def require(reg: Path) -> Path:
    """`reg`, when it is a registry; a HarnessError (exit 2) that says how to make one otherwise."""
    reg = Path(reg)
    if not exists(reg):
        raise HarnessError(f"no registry at {reg}", where=str(reg), fix=_FIX_EMPTY.format(dir=reg))
    return reg


def parse(spec: str, base_dir: Path | None = None) -> tuple[Path, int | None] | None:
    """`registry:DIR` -> (DIR, None); `registry:DIR@N` (or `@vN`) -> (DIR, N); anything else -> None. A relative
    DIR is resolved against `base_dir` (the config's folder), else the working directory."""
    if not spec.startswith(PREFIX):
        return None
    rest = spec[len(PREFIX) :]
    number = None
    if m := re.fullmatch(r"(.+)@v?(\d+)", rest):
        rest, number = m.group(1), int(m.group(2))
    path = Path(rest).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve(), number


def resolve(spec: str, base_dir: Path | None = None, *, key: str = "model.reference") -> Version:
    """The version `spec` names: `registry:DIR` (its current version) or `registry:DIR@N` (version N, current or
    not: a version rolled back from stays resolvable)."""
    where = f"{key} = {spec!r}"
    parsed = parse(spec, base_dir)
    if parsed is None or not spec[len(PREFIX) :].strip():
        raise HarnessError(
            "not a registry reference", where=where, fix="write registry:DIR (its current version) or registry:DIR@N"
        )
    reg, number = parsed
    if not reg.is_dir():
        raise HarnessError(f"no registry at {reg}", where=where, fix=_FIX_EMPTY.format(dir=reg))
    try:
        v = current(reg) if number is None else version(reg, number)
        there = "" if v is not None else ", ".join(f"v{x.number}" for x in versions(reg)) or "none"
    except HarnessError as e:  # a damaged registry: said where the config names it
        raise HarnessError(f"{e.where}: {e.message}", where=where, fix=e.fix) from None
    if number is None:
        if v is None:
            raise HarnessError(
                f"the registry at {reg} has no current version (nothing was promoted there yet)",
                where=where,
                fix=_FIX_EMPTY.format(dir=reg),
            )
        return v
    if v is None:
        raise HarnessError(
            f"the registry at {reg} has no version {number} (versions there: {there})",
            where=where,
            fix="name one of those versions with @N, or leave @N out for the current one (`harness registry list`)",
        )
    return v


@contextmanager
def locked(reg: Path) -> Iterator[None]:
    """Hold the registry (an advisory lock on its directory, no file created) so two promotions, or a promotion
    and a rollback, never interleave. `reg` must exist."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: writes stay atomic, concurrent writers are not serialised
        yield
        return
    fd = os.open(reg, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock on directories (some NFS mounts): atomic writes only
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def staging(reg: Path) -> Path:
    """A fresh hidden directory inside `reg` to build a version in (renamed into place by `add`)."""
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=reg))


def add(reg: Path, staged: Path, record: dict[str, Any], *, forced: bool = False) -> Version:
    """Make `staged` (built by `staging`, holding `model/`) the next version and the current one: write its
    PROMOTED.json (`record` plus version, forced, promoted_at/by), rename it to REG/vN, record the event. Call it
    while holding `locked(reg)`."""
    reg = Path(reg)
    st = state(reg)
    used = _numbers(reg) + [int(e["version"]) for e in st["events"] if isinstance(e.get("version"), int)]
    number = max(used, default=0) + 1  # never reuses a number, even one whose directory went missing
    at, by = now(), user()
    promoted = {"version": number, **record, "forced": forced, "promoted_at": at, "promoted_by": by}
    atomic_write_text(staged / PROMOTED, json.dumps(promoted, indent=2) + "\n")
    _share(staged)
    dest = reg / f"v{number}"
    os.replace(staged, dest)  # fails rather than replace a non-empty directory: nothing is ever overwritten
    event: dict[str, Any] = {"action": "promote", "version": number, "from": st["current"], "at": at, "by": by}
    if forced:
        event["forced"] = True
    st["events"].append(event)
    st["current"] = number
    _write_state(reg, st)
    return _load(reg, dest, number)


def previous(reg: Path) -> Version | None:
    """The champion before the current one: the version that was current when the current one was last promoted
    (so a version rolled back from is skipped), else the highest-numbered version below it."""
    reg = Path(reg)
    st = state(reg)
    cur = st["current"]
    if cur is None:
        return None
    for e in reversed(st["events"]):
        if e.get("action") == "promote" and e.get("version") == cur:
            return version(reg, int(e["from"])) if e.get("from") is not None else None
    below = [v for v in versions(reg) if v.number < int(cur)]
    return below[-1] if below else None


def rollback(reg: Path) -> Version:
    """Make the champion before the current one current again (see `previous`); recorded as an event, nothing
    deleted. A HarnessError (exit 2) where there is no registry or no earlier version."""
    reg = require(reg)
    with locked(reg):
        cur = current(reg)
        if cur is None:
            raise HarnessError(
                f"the registry at {reg} has no current version: nothing to roll back",
                where=str(reg),
                fix=_FIX_EMPTY.format(dir=reg),
            )
        prev = previous(reg)
        if prev is None:
            raise HarnessError(
                f"no earlier version to roll back to: v{cur.number} was the first release promoted as champion",
                where=str(reg),
                fix="promote a fixed release instead (`harness promote --report R --to DIR`)",
            )
        st = state(reg)
        st["events"].append(
            {"action": "rollback", "version": prev.number, "from": cur.number, "at": now(), "by": user()}
        )
        st["current"] = prev.number
        _write_state(reg, st)
    return prev


__all__ = [
    "MODEL",
    "PREFIX",
    "PROMOTED",
    "STATE",
    "Version",
    "add",
    "current",
    "exists",
    "locked",
    "parse",
    "previous",
    "require",
    "resolve",
    "rollback",
    "staging",
    "state",
    "version",
    "versions",
]
