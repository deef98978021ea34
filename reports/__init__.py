"""Renderers of the release report: Markdown for people, JSON for machines, JUnit for CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.files import atomic_write_text
from reports.figures import write_figures
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.types import SCHEMA_VERSION, Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


def write_reports(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and junit.xml into `out_dir` (each atomically), and the pictures report.md
    links (`reports.figures`)."""
    files = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "junit": out_dir / "junit.xml",
    }
    try:
        files.update(write_figures(report.gates, out_dir, report.reference_label))
    except Exception as e:  # a picture never costs the report: its numbers are in the tables
        report = report.with_note(f"pictures not drawn ({type(e).__name__}: {e}); their numbers are in the tables")
    atomic_write_text(files["json"], render_json(report))
    atomic_write_text(files["markdown"], render_markdown(report))
    atomic_write_text(files["junit"], render_junit(report))
    training = report.manifest.get("training") or {}
    curve = Path(report.manifest.get("adapter", {}).get("dir", "")) / str(training.get("loss_curve", ""))
    if training.get("loss_curve") and curve.is_file():
        files["loss_curve"] = Path(shutil.copy2(curve, out_dir / "loss_curve.png"))
    return files


def load_report(path: str | Path) -> Report:
    return Report.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


__all__ = ["SCHEMA_VERSION", "Report", "load_report", "render_json", "render_junit", "render_markdown", "write_reports"]
