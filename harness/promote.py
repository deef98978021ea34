"""`harness promote`: copy the gated adapter into a registry only if its report passed and it is unchanged."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError
from harness.hashing import sha256_dir


class PromotionRefused(HarnessError):
    """The release is blocked: exit 1, registry untouched."""


def _gated_bundle(report) -> Path | None:
    """The release bundle a passing gate checked (the rollback gate), when it still exists."""
    for g in report.gates:
        if g.verdict == "pass" and g.details.get("bundle"):
            path = Path(g.details["bundle"])
            return path if path.is_dir() else None
    return None


def promote(report_path: str | Path, registry: str | Path) -> Path:
    """Promote the adapter named in `report_path` into `registry`; return where it landed."""
    from reports import load_report

    rp = Path(report_path)
    if not rp.is_file():
        raise HarnessError("report not found", where=str(rp), fix="pass the report.json written by `harness gate`")
    try:
        report = load_report(rp)
    except (ValueError, KeyError, TypeError) as e:
        raise HarnessError(
            f"not a harness report ({type(e).__name__}: {e})",
            where=str(rp),
            fix="pass the report.json written by `harness gate`",
        ) from None
    if report.verdict != "pass":
        blockers = ", ".join(f"{g.name} ({g.verdict})" for g in report.blocking) or "no gates"
        raise PromotionRefused(
            f"the release did not pass (blocked by: {blockers}); nothing was promoted",
            where=str(rp),
            fix="fix the candidate and gate it again; see report.md beside the report",
        )
    adapter = Path(report.candidate.get("adapter", ""))
    gated_sha = report.candidate.get("adapter_sha256")
    if not adapter.is_dir():
        raise PromotionRefused(
            "the gated adapter directory no longer exists; nothing was promoted",
            where=str(adapter),
            fix="gate the adapter again where it now lives",
        )
    current = sha256_dir(adapter, fresh=True)  # never trust the hash index here
    if current != gated_sha:
        raise PromotionRefused(
            f"the adapter changed after gating (sha256 {current[:12]}… now, {str(gated_sha)[:12]}… when gated); "
            "nothing was promoted",
            where=str(adapter),
            fix="gate this exact adapter again before promoting it",
        )
    reg = Path(registry)
    if reg.exists() and not reg.is_dir():
        raise HarnessError("registry path exists and is not a directory", where=str(reg), fix="choose a directory")
    dest = reg / f"{adapter.name}-{current[:12]}"
    if dest.exists():
        if (dest / "adapter").is_dir() and sha256_dir(dest / "adapter", fresh=True) == current:
            return dest  # already promoted, identical: idempotent
        raise HarnessError(
            "registry entry exists with different content",
            where=str(dest),
            fix="remove it by hand if it is stale; promote never overwrites",
        )
    reg.mkdir(parents=True, exist_ok=True)
    tmp = reg / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(adapter, tmp / "adapter")
    bundle = _gated_bundle(report)
    if bundle is not None:  # what ships is the bundle: promote it, after checking it is still what was gated
        from harness.release.bundle import verify_files

        problems = verify_files(bundle)
        if problems["missing"] or problems["altered"]:
            shutil.rmtree(tmp, ignore_errors=True)
            raise PromotionRefused(
                f"the release bundle changed after gating (missing: {problems['missing']}, altered: "
                f"{problems['altered']}); nothing was promoted",
                where=str(bundle),
                fix="rebuild the bundle and gate it again",
            )
        shutil.copytree(bundle, tmp / "bundle")
    shutil.copy2(rp, tmp / "report.json")
    if (rp.parent / "report.md").is_file():
        shutil.copy2(rp.parent / "report.md", tmp / "report.md")
    (tmp / "PROMOTED.json").write_text(
        json.dumps(
            {
                "adapter_sha256": current,
                "base": report.candidate.get("base"),
                "report": str(rp.resolve()),
                "bundle": str(bundle) if bundle is not None else None,
                "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            indent=2,
        )
    )
    os.replace(tmp, dest)
    return dest
