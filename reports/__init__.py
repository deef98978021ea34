"""Renderers of the release report: Markdown for people, JSON for machines, JUnit for CI, HTML for a browser."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.core.console import console as rich_console  # `console` here is the reports.console module
from harness.core.data import clip
from harness.core.errors import HarnessError
from harness.core.files import atomic_write_text, read_utf8
from reports.figures import write_figures
from reports.html import render_html
from reports.items import ItemRow, frame, write_items
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.types import SCHEMA_VERSION, Report, sealed


def render_json(report: Report) -> str:
    return json.dumps(sealed(report), indent=2, default=str) + "\n"


def write_reports(report: Report, out_dir: Path, items: Sequence[ItemRow] | None = None) -> dict[str, Path]:
    """Write report.json, report.md and junit.xml into `out_dir` (each atomically), the pictures report.md links
    (`reports.figures`) and, given the run's `items` (`reports.items.item_rows`), items.parquet and items.csv (first,
    so that every later renderer can read them); report.html (`reports.html`) last."""
    files = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "junit": out_dir / "junit.xml",
    }
    if items is not None:
        try:
            files.update(write_items(items, out_dir))
        except Exception as e:  # the table never costs the report: its numbers are the gates'
            report = report.with_note(f"items table not written ({type(e).__name__}: {clip(str(e))})")
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
    try:  # last: the page inlines the pictures above and shows the items table
        files["html"] = render_html(report, frame(items) if items is not None else None, out_dir)
    except Exception as e:  # the page never costs the report: report.md says everything it would
        rich_console.print(
            f"[yellow]warning[/]: report.html not written ({escape(type(e).__name__)}: {escape(clip(str(e)))}); "
            f"`harness report {escape(str(out_dir))} --html` renders it again",
            soft_wrap=True,
        )
    return files


_REPORT_FIX = "pass the report.json written by `harness gate` (re-run the gate if it was damaged)"
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def _report_json(path: Path) -> Any:
    text = read_utf8(path, what="report")
    if not text.strip():
        raise HarnessError("the report is empty", where=str(path), fix=_REPORT_FIX)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        cut = "" if text.rstrip().endswith("}") else "; the file ends before the JSON does: it may have been cut short"
        raise HarnessError(
            f"not valid JSON ({e.msg}: line {e.lineno}, column {e.colno}){cut}",
            where=f"{path}:{e.lineno}",
            fix=_REPORT_FIX,
        ) from None
    except (ValueError, RecursionError) as e:  # a number too long to convert, arrays nested thousands deep
        why = "nested too deeply" if isinstance(e, RecursionError) else clip(str(e))
        raise HarnessError(f"not readable JSON ({why})", where=str(path), fix=_REPORT_FIX) from None


def load_report(path: str | Path) -> Report:
    """The report in `path`, a report.json `harness gate` wrote; anything else is bad input naming the file."""
    path = Path(path)
    data = _report_json(path)
    if not isinstance(data, dict):
        got = "null" if data is None else _JSON_TYPES.get(type(data), type(data).__name__)
        raise HarnessError(
            f'not a harness report: the file holds {got}, a report is a JSON object with "verdict" and "gates"',
            where=str(path),
            fix=_REPORT_FIX,
        )
    try:
        return Report.from_dict(data)
    except KeyError as e:
        raise HarnessError(
            f"not a harness report: it has no {clip(str(e))}", where=str(path), fix=_REPORT_FIX
        ) from None
    except (TypeError, ValueError, AttributeError) as e:
        why = f"{type(e).__name__}: {clip(str(e))}"
        raise HarnessError(f"not a harness report ({why})", where=str(path), fix=_REPORT_FIX) from None


def check_out_file(path: Path, flag: str, example: str) -> None:
    """Refuse an output file that cannot be written (a directory; a folder that is missing, not a folder, or not
    writable), before anything is read or written. It creates nothing."""
    parent = path.parent
    problem, fix = None, f"choose another {flag}"
    if path.is_dir():
        problem, fix = f"{flag} names a directory, not a file", f"name a file in it, e.g. {flag} {path / example}"
    elif not parent.exists():
        problem = f"the folder '{parent}' does not exist"
        fix = f"create it first (`mkdir -p {shlex.quote(str(parent))}`) or choose another {flag}"
    elif not parent.is_dir():
        problem = f"'{parent}' is a file, not a folder"
    elif not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        problem = f"'{path if path.exists() else parent}' is not writable"
        fix = f"choose another {flag} in a folder you may write to (or change its permissions)"
    if problem:
        raise HarnessError(problem, where=str(path), fix=fix)


__all__ = [
    "SCHEMA_VERSION",
    "Report",
    "check_out_file",
    "load_report",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "write_reports",
]
