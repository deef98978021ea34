"""The console summary: the same gate table as report.md, in colour."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.core.console import console
from reports.types import Report

_STYLE = {"pass": "green", "fail": "red", "error": "magenta", "inconclusive": "yellow", "skip": "dim", "n/a": "cyan"}


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def print_summary(report: Report, files: dict[str, Path] | None = None) -> None:
    if report.reference:
        console.print(f"Reference: {escape(str(report.reference.get('describe') or report.reference.get('path')))}")
    if report.candidate.get("describe"):
        console.print(f"Candidate: {escape(str(report.candidate['describe']))}")
    table = Table(title="Release gates", show_lines=False)
    for col in ("gate", "req", report.reference_label, "candidate", "delta", "CI", "threshold", "verdict"):
        table.add_column(col)
    for g in report.gates:
        ci = f"[{_f(g.ci[0])}, {_f(g.ci[1])}]" if g.ci else "–"
        table.add_row(
            g.name,
            "yes" if g.required else "no",
            _f(g.baseline),
            _f(g.candidate),
            _f(g.delta),
            ci,
            _f(g.threshold),
            f"[{_STYLE[g.verdict]}]{g.verdict}[/]",
        )
    console.print(table)
    for g in report.gates:  # n/a gates too: their explanation is why they do not apply
        if g.verdict != "pass":
            console.print(f"[{_STYLE[g.verdict]}]{escape(g.name)}[/]: {escape(g.explanation)}")
    if report.verdict == "pass":
        na = f" ({', '.join(g.name for g in report.not_applicable)}: not applicable)" if report.not_applicable else ""
        console.print(f"[bold green]PASS[/]: every required gate passed{escape(na)}; the candidate may be promoted.")
    else:
        names = ", ".join(g.name for g in report.blocking) or (
            "nothing: no gate applies to this candidate" if report.not_applicable else "nothing: no gates ran"
        )
        console.print(f"[bold red]BLOCKED[/] by {escape(names)}: do not promote.")
    if files:
        also = ", ".join(files[k].name for k in ("json", "junit", "html", "items_parquet", "items_csv") if k in files)
        console.print(f"Report: {files['markdown']}  (also {also})")
