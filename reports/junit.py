"""`junit.xml`: one test case per gate, so any CI shows which gate blocked."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reports.types import Report


def _evidence_text(g, reference: str = "base") -> str:
    """The explanation and the worst examples; `reference` names the compared model ("base" | "reference")."""
    lines = [g.explanation]
    for e in g.evidence:
        lines.append(
            f"- {e.id}: {e.prompt[:200]} | {reference}={e.base_output or e.base_score} "
            f"| candidate={e.candidate_output or e.candidate_score} | {e.note}"
        )
    return "\n".join(lines)


def render_junit(report: Report) -> str:
    suite = ET.Element(
        "testsuite", name="harness.release-gates", tests=str(len(report.gates)), timestamp=report.created_at
    )
    if report.reference:
        props = ET.SubElement(suite, "properties")
        for key in ("describe", "form", "sha256"):
            if report.reference.get(key):
                ET.SubElement(props, "property", name=f"reference.{key}", value=str(report.reference[key]))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    label = report.reference_label
    for g in report.gates:
        case = ET.SubElement(suite, "testcase", classname="harness.gates", name=g.name)
        text = _evidence_text(g, label)
        if g.verdict == "pass":
            ET.SubElement(case, "system-out").text = text
        elif g.verdict == "n/a":  # no question for this candidate: neither a pass nor a failure
            ET.SubElement(case, "skipped", message=g.explanation[:500]).text = text
            counts["skipped"] += 1
        elif not g.required:
            ET.SubElement(case, "skipped", message=f"optional gate {g.verdict}: {g.explanation[:300]}").text = text
            counts["skipped"] += 1
        elif g.verdict == "error":
            ET.SubElement(case, "error", message=g.explanation[:500]).text = text
            counts["errors"] += 1
        else:  # fail, inconclusive, and a required gate that was skipped all block
            ET.SubElement(case, "failure", message=f"{g.verdict}: {g.explanation[:500]}").text = text
            counts["failures"] += 1
    for k, v in counts.items():
        suite.set(k, str(v))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
