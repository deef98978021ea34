"""`report.md`: a verdict banner, the gate table, what blocked and why (with the worst examples), the manifest."""

from __future__ import annotations

import json
from typing import Any

from fine_tune.audit import Audit, render_audit
from gates.types import GateResult
from reports.figures import statistical
from reports.power import power_section
from reports.types import Report

_ICON = {"pass": "✅", "fail": "❌", "error": "💥", "inconclusive": "❔", "skip": "⏭️", "n/a": "➖"}


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3e}"


def _ci(g: GateResult) -> str:
    if g.ci is None:
        return "–"
    level = g.details.get("bootstrap", {}).get("level")
    prefix = f"{level:.0%} " if level else ""
    return f"{prefix}[{_num(g.ci[0])}, {_num(g.ci[1])}]"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gate_table(gates: tuple[GateResult, ...], reference: str = "base") -> list[str]:
    """One row per gate; `reference` heads the compared model's column ("base" | "reference")."""
    lines = [
        f"| gate | required | metric | {reference} | candidate | delta | CI | threshold | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in gates:
        lines.append(
            f"| `{g.name}` | {'yes' if g.required else 'no'} | {_cell(g.metric, 60)} | {_num(g.baseline)} | "
            f"{_num(g.candidate)} | {_num(g.delta)} | {_ci(g)} | {_num(g.threshold)} | {_ICON[g.verdict]} {g.verdict} |"
        )
    return lines


def evidence_more(g: GateResult, in_items: bool) -> str:
    """The sentence under a gate's worst examples when it has more than it shows: how many more, and where they
    are ("" when it shows them all, or does not count them)."""
    shown, total = len(g.evidence), g.evidence_total
    if total is None or total <= shown:
        return ""
    where = (
        "every item of this gate, for both models, is in `items.parquet` beside this report "
        "(`harness.results.load(DIR)` reads it)"
        if in_items
        else "this gate's `details` in report.json hold them all"
    )
    return f"{total - shown} more not shown ({total} in all): {where}."


def _evidence(g: GateResult, reference: str = "base", in_items: bool = False) -> list[str]:
    if not g.evidence:
        return []
    total = g.evidence_total
    head = f"Worst examples ({len(g.evidence)} of {total}):" if total and total > len(g.evidence) else "Worst examples:"
    lines = ["", head, "", f"| id | item | {reference} | candidate | note |", "|---|---|---|---|---|"]
    for e in g.evidence:
        base = e.base_output if e.base_output is not None else _num(e.base_score)
        cand = e.candidate_output if e.candidate_output is not None else _num(e.candidate_score)
        lines.append(
            f"| `{_cell(e.id, 40)}` | {_cell(e.prompt)} | {_cell(base)} | {_cell(cand)} | {_cell(e.note, 80)} |"
        )
    more = evidence_more(g, in_items)
    return [*lines, "", more] if more else lines


def gate_tables(g: GateResult) -> list[str]:
    """The tables a gate shows under its own heading (e.g. the judge's quality and rubric)."""
    out = []
    for t in g.tables:
        if t.section != "gate":
            continue
        out += ["", f"{t.title}:", "", "| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        out += ["| " + " | ".join(row) + " |" for row in t.rows]
    return out


def _figures(g: GateResult, reference: str = "base") -> list[str]:
    """The pictures under a gate's heading (their numbers are in its tables just above)."""
    if g.details.get("reliability"):
        return ["", f"![reliability diagram of {reference} and candidate]({g.name}.png)"]
    return []


def export_section(gates: tuple[GateResult, ...]) -> list[str]:
    """What ships: every gate's "ships" rows (files, sizes, hashes, bundle, serving cost), in gate order."""
    rows = [row for g in gates for t in g.tables if t.section == "ships" for row in t.rows]
    if not rows:
        return []
    return ["", "## Export: what ships", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


def dataset_section(audits: list[dict] | None) -> list[str]:
    """The training data as the trainer saw it (dataset audit), when the release checks contamination."""
    if not audits:
        return []

    out = ["", "## Dataset: the training data audited"]
    for a in audits:
        out.append("")
        out += [f"**{a['name']}**: audit failed: {a['error']}"] if "error" in a else render_audit(Audit(**a))
    return out


def training_section(t: dict | None) -> list[str]:
    """How the candidate was trained, from the training manifest beside its adapter."""
    if not t or "error" in t:
        return []
    tpl = t.get("template_diversity") or {}
    data = t.get("data", {})
    rows = [
        ("method / stage", f"{t.get('method')} / {t.get('stage')}"),
        (
            "LoRA",
            f"r={t.get('config', {}).get('r')}, alpha={t.get('config', {}).get('alpha')}, "
            f"modules {', '.join(t.get('target_modules') or [])}",
        ),
        (
            "steps",
            f"{t.get('steps')}" + (f" (resumed from {t['resumed_from_step']})" if t.get("resumed_from_step") else ""),
        ),
        ("final train / validation loss", f"{_num(t.get('train_loss'))} / {_num(t.get('valid_loss'))}"),
        ("validation loss of the base (step 0)", _num(t.get("valid_loss_start"))),
        ("wall time, throughput", f"{_num(t.get('wall_time_s'))} s, {_num(t.get('tokens_per_s'))} tokens/s"),
        (
            "compute dtype",
            f"{t.get('compute_dtype')} on {t.get('device')}"
            + (" (base in 4-bit NF4, double quantisation)" if t.get("quantization") else ""),
        ),
        (
            "train data",
            f"{data.get('train', {}).get('records')} rows, sha256 `{str(data.get('train', {}).get('sha256'))[:16]}…`",
        ),
        ("validation", f"{data.get('valid', {}).get('records')} rows ({data.get('valid', {}).get('split')})"),
        ("instruction templates", f"{tpl.get('count')} ({tpl.get('method')})" if tpl else "–"),
        ("seed", str(t.get("seed"))),
    ]
    out = ["", "## Training", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]
    if tpl.get("warning"):
        out += ["", f"⚠️ {tpl['warning']}"]
    if t.get("loss_curve"):
        out += ["", "![loss curve](loss_curve.png)"]
    out += _loss_table(t.get("loss_log") or [])
    return out


def _loss_table(rows: list[dict]) -> list[str]:
    """The loss curve's points (at most 12 rows: every evaluation step, then logged steps evenly)."""
    rows = [r for r in rows if isinstance(r, dict) and "step" in r]
    if not rows:
        return []
    keys = [k for k in ("train_loss", "train_sample_loss", "eval_loss") if any(r.get(k) is not None for r in rows)]
    evals = [r for r in rows if r.get("eval_loss") is not None]
    rest = [r for r in rows if r.get("eval_loss") is None]
    room = max(0, 12 - len(evals))
    picked = evals + (rest[:: max(1, -(-len(rest) // room))] if room and rest else [])
    picked = sorted({r["step"]: r for r in picked}.values(), key=lambda r: r["step"])[:12]
    names = {"train_loss": "train (running)", "train_sample_loss": "train sample", "eval_loss": "validation"}
    out = ["", "Loss curve points:", "", "| step | " + " | ".join(names[k] for k in keys) + " |"]
    out.append("|---|" + "---|" * len(keys))
    out += [f"| {r['step']} | " + " | ".join(_num(r.get(k)) for k in keys) + " |" for r in picked]
    return out


def _sha(x: Any) -> str:
    return f"`{str(x)[:16]}…`"


def models_section(report: Report) -> list[str]:
    """Header lines naming the two models compared: the candidate, the reference (and its registry), the base."""
    c, ref = report.candidate, report.reference

    def sha(side: dict[str, Any], words: str) -> str:  # the hash, unless the description already gives it
        h = side.get("sha256")
        return f" (sha256 {_sha(h)})" if h and str(h)[:12] not in words else ""

    if c.get("describe"):
        cand = f"- **Candidate:** {c['describe']}" + sha(c, c["describe"])
    else:  # a report from before references: the candidate was an adapter
        cand = f"- **Candidate:** `{c.get('adapter')}` (adapter sha256 {_sha(c.get('adapter_sha256'))})"
    out = [cand]
    if ref:
        what = ref.get("describe") or f"`{ref.get('path')}` ({ref.get('form')})"
        out.append(f"- **Reference:** {what}" + sha(ref, what))
        reg = ref.get("registry")
        if reg:
            out.append(f"- **Reference registry:** `{reg.get('dir')}`, version {reg.get('version')}")
    out.append(f"- **Base:** `{c.get('base') or (ref or {}).get('base')}`")
    return out


def render_markdown(report: Report) -> str:
    passed = report.verdict == "pass"
    label = report.reference_label
    banner = "✅ PASS: safe to promote" if passed else "❌ BLOCKED: do not promote"
    counts = {v: sum(1 for g in report.gates if g.verdict == v) for v in _ICON}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    na = report.not_applicable
    out = [
        f"# Release report: {banner}",
        "",
        *models_section(report),
        f"- **Gates:** {summary or 'none'}",
        f"- **Created:** {report.created_at}",
    ]
    if na:
        out.append(
            "- **Not applicable** (neither passed nor blocking): " + "; ".join(f"`{g.name}`: {g.reason_na}" for g in na)
        )
    if not passed:
        if report.blocking:
            why = ", ".join(f"`{g.name}` ({g.verdict})" for g in report.blocking)
        elif na:
            why = "nothing: no gate applies to this candidate, so nothing was checked"
        else:
            why = "nothing: no gates ran"
        out.append(f"- **Blocked by:** {why}")
    for note in report.notes:
        out.append(f"- **Note:** {note}")
    out += ["", "## Gates", "", *gate_table(report.gates, label)]
    if statistical(report.gates):
        out += [
            "",
            f"![forest plot: candidate - {label} per statistical gate, with its interval and threshold](forest.png)",
            "",
            "The forest plot's numbers are the delta, CI and threshold columns above.",
        ]

    tabled = set((report.manifest.get("items") or {}).get("gates") or ())  # the gates with rows in items.parquet
    not_passed = [g for g in report.gates if g.verdict != "pass" and g.applicable]
    if not_passed:
        out += ["", "## Gates that did not pass"]
        for g in not_passed:
            req = "" if g.required else " (optional: does not block)"
            out += ["", f"### {_ICON[g.verdict]} `{g.name}`: {g.verdict}{req}", "", g.explanation]
            out += [*gate_tables(g), *_figures(g, label), *_evidence(g, label, g.name in tabled)]
    passed_gates = [g for g in report.gates if g.verdict == "pass"]
    if passed_gates:
        out += ["", "## Gates that passed"]
        for g in passed_gates:
            out += ["", f"### ✅ `{g.name}`", "", g.explanation, *gate_tables(g), *_figures(g, label)]
            out += _evidence(g, label, g.name in tabled)

    m = report.manifest
    base, ad = m.get("base", {}), m.get("adapter", {})
    ref = report.reference or {}
    rows = [
        *([("reference", f"{ref.get('form')}: `{ref.get('path')}`")] if ref else []),
        *([("reference sha256", f"`{ref.get('sha256')}`")] if ref.get("sha256") else []),
        ("base model", f"`{base.get('id')}` ({base.get('source')})"),
        ("base weights sha256", f"`{base.get('weights_sha256')}`"),
        ("base GGUF sha256", f"`{base.get('gguf_sha256')}`" if base.get("gguf_sha256") else "–"),
        (
            "tokenizer sha256 (base / candidate)",
            f"`{str(base.get('tokenizer_sha256'))[:16]}…` / `{str(ad.get('tokenizer_sha256'))[:16]}…`",
        ),
        (
            "chat template sha256 (base / candidate)",
            f"`{str(base.get('chat_template_sha256'))[:16]}…` / `{str(ad.get('chat_template_sha256'))[:16]}…`",
        ),
        *(  # a full-checkpoint candidate has no adapter
            [
                ("adapter", f"`{ad.get('dir')}`"),
                ("adapter sha256", f"`{ad.get('sha256')}`"),
                ("adapter's recorded base", f"`{ad.get('recorded_base_model_name_or_path')}`"),
            ]
            if ad or not report.reference
            else []
        ),
        ("seed", str(m.get("seed"))),
        (
            "device",
            str(
                m.get("device")
                or (
                    "– (all measurements from cache)"
                    if not m.get("cache", {}).get("misses")
                    else "– (no model in-process)"
                )
            ),
        ),
        ("git", f"`{m['git']['commit'][:12]}`{' (dirty)' if m['git']['dirty'] else ''}" if m.get("git") else "–"),
        ("cache", f"{m.get('cache', {}).get('hits', 0)} hits, {m.get('cache', {}).get('misses', 0)} misses"),
    ]
    for variant, r in (m.get("runtimes") or {}).items():
        where = (
            f"served as `{r.get('served_as')}` by {r.get('server')} (root `{r.get('root')}`"
            + (f", parent `{r['parent']}`" if r.get("parent") else "")
            + (
                ""
                if "tokenizer_checked" not in r  # no preflight ran
                else "; tokenizer checked equal to the local one"
                if r["tokenizer_checked"]
                else "; tokenizer not checked: the server has no /tokenize"
            )
            + ")"
            if r.get("engine") == "openai"
            else f"in-process on {r.get('device') or 'the cache (nothing measured)'}"
        )
        rows.append((f"{variant} answered by", f"{r.get('engine')}, {where}"))
    for d in m.get("datasets", []):
        rows.append((f"data `{d['name']}`", f"{d['records']} records, sha256 `{d['sha256'][:16]}…`"))
    pk = m.get("packages", {})
    rows.append(("packages", ", ".join(f"{k} {v}" for k, v in pk.items() if v)))
    out += power_section(report.gates, label)
    out += export_section(report.gates)
    out += dataset_section(m.get("dataset_audit"))
    out += training_section(m.get("training"))
    out += ["", "## Manifest: what exactly was gated", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    out += [
        "",
        "<details><summary>Full manifest (JSON)</summary>",
        "",
        "```json",
        json.dumps(m, indent=2, default=str),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(out)
