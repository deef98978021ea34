"""`harness promote`: add the gated candidate to a registry as its new current version, only if the report passed,
every file is still the one gated, and the champion it was gated against is still the current one."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core import registry
from harness.core.errors import HarnessError
from harness.core.files import read_utf8
from harness.core.hashing import list_files, sha256_dir
from harness.core.registry import Version
from harness.release.bundle import verify_files
from harness.verify import check_content_hash, disagreement, rederive
from reports import load_report
from reports.types import CONTENT_HASH

FORMS = ("adapter", "full")


class PromotionRefused(HarnessError):
    """The release is blocked: exit 1, registry untouched."""


@dataclass(frozen=True)
class Candidate:
    """What the report says was gated (the new `candidate` shape, or the old adapter-only one)."""

    form: str  # adapter | full
    path: Path
    sha256: str
    base: str | None
    describe: str


@dataclass(frozen=True)
class Promotion:
    """The outcome of `promote`."""

    version: Version  # the current version now
    new: bool  # False: this exact candidate already was the current version; nothing changed
    forced: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return self.version.dir


def gated_candidate(cand: dict[str, Any], where: str) -> Candidate:
    """The candidate of a report: {"form", "path", "sha256", "base", "describe"}, or, in reports from before full
    checkpoints could be gated, {"adapter", "adapter_sha256", "base"}."""
    if "form" in cand:
        form, path, sha = cand["form"], cand.get("path"), cand.get("sha256")
    else:
        form, path, sha = "adapter", cand.get("adapter"), cand.get("adapter_sha256")
    if not path or not sha:
        raise HarnessError(
            "the report names no candidate (no path or sha256 under `candidate`)",
            where=where,
            fix="pass the report.json written by `harness gate`",
        )
    if form not in FORMS:
        raise HarnessError(
            f"a {form!r} candidate cannot be promoted: the registry holds adapter or full model directories",
            where=where,
            fix="gate the adapter directory or the full model directory that will ship",
        )
    return Candidate(form, Path(path), str(sha), cand.get("base"), cand.get("describe") or f"{form} {path}")


def _load(rp: Path) -> tuple[dict[str, Any], Any]:
    """report.json as its raw JSON (what is checked) and as a Report (what is read)."""

    if not rp.is_file():
        raise HarnessError("report not found", where=str(rp), fix="pass the report.json written by `harness gate`")
    fix = "pass the report.json written by `harness gate`"
    try:
        raw = json.loads(read_utf8(rp, what="report"))
        if not isinstance(raw, dict):
            raise TypeError(f"it holds a JSON {type(raw).__name__}, not an object")
        report = load_report(rp)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise HarnessError(f"not a harness report ({type(e).__name__}: {e})", where=str(rp), fix=fix) from None
    return raw, report


def _check_sealed(raw: dict[str, Any], rp: Path) -> None:
    """The file is as `harness gate` wrote it (its content hash)."""
    problem = check_content_hash(raw)
    if problem:
        raise PromotionRefused(
            f"the report cannot be trusted: {problem}; nothing was promoted",
            where=f"{rp} {CONTENT_HASH}",
            fix="gate the candidate again (the cache makes it quick) and promote the report it writes, unedited",
        )


def _check_rederived(raw: dict[str, Any], rp: Path) -> None:
    """Every verdict and number that decides the release, decided again from the run's measurements."""
    try:
        again = rederive(raw, str(rp))
    except HarnessError as e:  # e.g. the measurements are not in this machine's cache, a data file changed
        raise PromotionRefused(f"{e.message}; nothing was promoted", where=e.where or str(rp), fix=e.fix) from None
    diff = disagreement(raw, again)
    if diff:
        raise PromotionRefused(
            f"the report does not match the run that wrote it: {diff}; nothing was promoted",
            where=f"{rp} {diff.split(':', 1)[0]}",
            fix="the file was edited after gating: promote the report `harness gate` wrote, or gate again",
        )


def _check_passed(report, rp: Path) -> None:
    """The verdict re-derived from the gates (every required gate passed), not only the one the report states."""
    blocking = report.blocking
    if report.verdict == "pass" and not blocking and report.gates:
        return
    blockers = ", ".join(f"{g.name} ({g.verdict})" for g in blocking) or "no gates"
    said = "" if report.verdict != "pass" else " although the report says pass"
    raise PromotionRefused(
        f"the release did not pass{said} (blocked by: {blockers}); nothing was promoted",
        where=str(rp),
        fix="fix the candidate and gate it again; see report.md beside the report",
    )


def _gated_bundle(report) -> Path | None:
    """The release bundle a passing gate checked (the rollback gate), when it still exists."""
    for g in report.gates:
        if g.verdict == "pass" and g.details.get("bundle"):
            path = Path(g.details["bundle"])
            return path if path.is_dir() else None
    return None


def _check_bundle(bundle: Path) -> None:
    problems = verify_files(bundle)
    if problems["missing"] or problems["altered"]:
        raise PromotionRefused(
            f"the release bundle changed after gating (missing: {problems['missing']}, altered: "
            f"{problems['altered']}); nothing was promoted",
            where=str(bundle),
            fix="rebuild the bundle and gate it again",
        )


def _changed(cand: Candidate, now: str, fix: str) -> PromotionRefused:
    what = "adapter" if cand.form == "adapter" else "full checkpoint"
    return PromotionRefused(
        f"the {what} changed after gating (sha256 {now[:12]}… now, {cand.sha256[:12]}… when gated); "
        "nothing was promoted",
        where=str(cand.path),
        fix=fix,
    )


def champion_moved(reference: dict[str, Any] | None, champion: Version) -> str | None:
    """Why the release was not gated against `champion` (the registry's current version), or None when it was."""
    if reference and reference.get("form") != "base" and reference.get("sha256") == champion.sha256:
        return None
    gated = reference.get("describe") if reference else None
    gated = gated or ("the base" if reference else "no recorded reference (a report from before references)")
    return (
        f"the champion moved since gating: the release was gated against {gated}, but the registry's current "
        f"version is {champion.label}"
    )


def _copy_model(src: Path, dest: Path) -> None:
    """Copy exactly the files `sha256_dir` hashes (hidden files and folders stay behind), following links."""
    for f in list_files(src):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def promote(report_path: str | Path, registry_dir: str | Path, *, force: bool = False) -> Promotion:
    """Add the candidate gated in `report_path` to the registry `registry_dir` as its new current version.

    Refused (PromotionRefused, exit 1, the registry unchanged) when report.json was edited after it was written
    (its content hash, and every verdict decided again from the run's measurements in the cache: `harness.verify`),
    when the re-derived verdict is not pass, when the
    candidate's files (or the gated release bundle) changed since gating, or when the registry's current version is
    not what the release was gated against (unless `force`: then promoted, and recorded as forced). Promoting the
    current version's content again changes nothing.
    """
    rp = Path(report_path)
    raw, report = _load(rp)
    _check_sealed(raw, rp)
    _check_passed(report, rp)
    cand = gated_candidate(report.candidate, str(rp))
    reference = report.reference
    if not cand.path.is_dir():
        raise PromotionRefused(
            f"the gated {cand.form} directory no longer exists; nothing was promoted",
            where=str(cand.path),
            fix="gate the candidate again where it now lives",
        )
    fix = f"gate this exact {'adapter' if cand.form == 'adapter' else 'checkpoint'} again before promoting it"
    now = sha256_dir(cand.path, fresh=True)  # never trust the hash index here
    if now != cand.sha256:
        raise _changed(cand, now, fix)
    _check_rederived(raw, rp)  # the verdicts as the measurements decide them, not as the file says
    bundle = _gated_bundle(report)
    if bundle is not None:  # what ships is the bundle: promote it, after checking it is still what was gated
        _check_bundle(bundle)

    reg = Path(registry_dir)
    if reg.exists() and not reg.is_dir():
        raise HarnessError("registry path exists and is not a directory", where=str(reg), fix="choose a directory")
    created = not reg.exists()
    reg.mkdir(parents=True, exist_ok=True)
    staged = None
    try:
        with registry.locked(reg):
            champion = registry.current(reg)
            if champion is not None and champion.sha256 == cand.sha256:
                return Promotion(champion, new=False)
            warnings: tuple[str, ...] = ()
            moved = champion_moved(reference, champion) if champion is not None else None
            if moved and not force:
                raise PromotionRefused(
                    f"{moved}; nothing was promoted",
                    where=str(rp),
                    fix=f'gate the candidate again with reference = "registry:{reg.resolve()}", or pass --force '
                    "to promote it anyway",
                )
            if moved:
                warnings = (f"{moved}; promoting anyway (--force)",)
            staged = registry.staging(reg)
            _copy_model(cand.path, staged / registry.MODEL)
            copied = sha256_dir(staged / registry.MODEL, fresh=True)  # what ships is what was gated
            if copied != cand.sha256:
                raise _changed(cand, copied, fix)
            if bundle is not None:
                shutil.copytree(bundle, staged / "bundle")
            shutil.copy2(rp, staged / "report.json")
            if (rp.parent / "report.md").is_file():
                shutil.copy2(rp.parent / "report.md", staged / "report.md")
            config = (report.manifest or {}).get("config_path")
            if config and Path(config).is_file():
                shutil.copy2(config, staged / "config.toml")
            record = {
                "form": cand.form,
                "sha256": cand.sha256,
                "base": cand.base,
                "describe": cand.describe,
                "source": str(cand.path),
                "reference": reference,
                "verdict": "pass",
                "report": str(rp.resolve()),
                "bundle": str(bundle) if bundle is not None else None,
            }
            version = registry.add(reg, staged, record, forced=bool(moved))
            staged = None
            return Promotion(version, new=True, forced=bool(moved), warnings=warnings)
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        if created and reg.is_dir() and not any(reg.iterdir()):
            reg.rmdir()  # a refused first promotion leaves no empty registry behind
