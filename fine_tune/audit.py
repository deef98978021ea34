"""Dataset audit (`harness data audit FILE` and the report's dataset section) and dedup (`harness data dedup`).

What the trainer will see: counts by task type, exact and near duplicates, examples rendered through the
chat template exactly as the trainer renders them, token lengths, the share cut at the training max length
by task type (and whether the cut reaches the answer), template diversity, and the content hash.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fine_tune.datasets import template_diversity
from fine_tune.licenses import LicenseTally, refusal_message, tally
from harness.core.data import clip, iter_lines, load_dataset
from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, as_is, kind
from harness.core.models import load_tokenizer, resolve_base, tokenizer_dir
from probes.contamination import duplicates
from probes.overlap import read_text_set

EXAMPLES = 2
SHOWN_CHARS = 4000  # the most of a rendered example the audit prints (a row may hold up to 1 MB)


@dataclass(frozen=True)
class Audit:
    name: str
    path: str
    sha256: str
    rows: int
    kinds: dict[str, int]  # chat / text
    tasks: dict[str, int]
    exact_duplicates: int  # rows that repeat an earlier row (normalised text)
    near_duplicates: int  # pairs above the fuzzy cut-off
    duplicate_examples: list[list[Any]]
    template_count: int | None
    template_method: str
    template_warning: str | None
    max_length: int
    tokens: dict[str, float]  # min, median, p95, max
    truncated_by_task: dict[str, float]  # share of rows longer than max_length, per task type
    answer_cut: list[str]  # ids whose answer (supervised part) is cut by max_length
    rendered: list[str] = field(default_factory=list)  # the first rows exactly as the trainer renders them
    tokenizer: str = ""
    licenses: dict[str, Any] = field(default_factory=dict)  # fine_tune.licenses.LicenseTally, as a dict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def warnings(self) -> list[str]:
        out = []
        if self.exact_duplicates:
            out.append(f"{self.exact_duplicates} exact duplicate row(s): `harness data dedup` writes a clean copy")
        if self.near_duplicates:
            out.append(f"{self.near_duplicates} near-duplicate pair(s)")
        if self.template_warning:
            out.append(self.template_warning)
        if self.answer_cut:
            out.append(f"{len(self.answer_cut)} row(s) have their answer cut at max_length={self.max_length}")
        lic = self.licenses
        if lic.get("unlicensed"):
            n = lic.get("licenses", {}).get("(none)", len(lic["unlicensed"]))
            ids = ", ".join(map(clip, lic["unlicensed"][:3]))
            out.append(
                f'{n} row(s) carry no licence (e.g. {ids}): give rows a "license" '
                "field or the folder a dataset card (README.md with `license:` in its front matter)"
            )
        if lic.get("refused_rows"):
            out.append(refusal_message(self.name, LicenseTally(**lic)))
        return out


def _task(meta: dict[str, Any], is_chat: bool) -> str:
    for key in ("task", "source"):
        if meta.get(key) is not None:
            return str(meta[key])
    return "chat" if is_chat else "text"


def audit(
    spec: str,
    base_dir: Path | None = None,
    *,
    tokenizer: str = "smollm2-135m-instruct",
    max_length: int = 512,
    fuzzy_cutoff: float = 90.0,
    tok_dir: Path | None = None,
    allowed_licenses: list[str] = (),  # type: ignore[assignment]
    disallowed_licenses: list[str] = (),  # type: ignore[assignment]
) -> Audit:
    """Audit a training file as the runner would read it, with `tokenizer`'s chat template (or the tokenizer
    in `tok_dir`)."""

    ds = load_dataset(spec, base_dir, key="data audit")
    dup = duplicates(read_text_set(spec, base_dir), cutoff=fuzzy_cutoff)
    if tok_dir is None:
        tok_dir = tokenizer_dir(resolve_base(tokenizer, base_dir))
    tok = load_tokenizer(tok_dir, need_chat_template=ds.needs_chat_template)
    lengths, long_by_task, all_by_task, cut, rendered = [], Counter(), Counter(), [], []
    for r in ds.records:
        task = _task(r.meta, r.is_chat)
        all_by_task[task] += 1
        if r.is_chat:
            msgs = list(r.messages or ())
            full = tok.apply_chat_template(msgs, tokenize=False)
            prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
            ids = tok(full, add_special_tokens=False)["input_ids"]
            n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
            if len(ids) > max_length and msgs[-1]["role"] == "assistant" and n_prompt < len(ids):
                cut.append(r.id)  # the supervised answer does not fit: the model learns a truncated answer
        else:
            full = r.text or ""
            ids = tok(full, add_special_tokens=False)["input_ids"]
        lengths.append(len(ids))
        if len(ids) > max_length:
            long_by_task[task] += 1
        if len(rendered) < EXAMPLES:
            rendered.append(full)
    lengths.sort()
    td = template_diversity(ds.records)
    kinds = Counter("chat" if r.is_chat else "text" for r in ds.records)
    return Audit(
        name=ds.name,
        path=str(ds.path),
        sha256=ds.sha256,
        rows=len(ds.records),
        kinds=dict(kinds),
        tasks=dict(all_by_task),
        exact_duplicates=dup.exact_extra,
        near_duplicates=len(dup.near_pairs),
        duplicate_examples=[list(g[:3]) for g in dup.exact_groups[:3]] + [list(p) for p in dup.near_pairs[:3]],
        template_count=td.count,
        template_method=td.method,
        template_warning=td.warning,
        max_length=max_length,
        tokens={
            "min": lengths[0],
            "median": statistics.median(lengths),
            "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
            "max": lengths[-1],
        },
        truncated_by_task={t: round(long_by_task[t] / n, 4) for t, n in sorted(all_by_task.items())},
        answer_cut=cut,
        rendered=rendered,
        tokenizer=tokenizer,
        licenses=tally(ds, allowed=allowed_licenses, disallowed=disallowed_licenses).to_dict(),
    )


def render_audit(a: Audit) -> list[str]:
    """Markdown lines (used by `harness data audit` and the release report)."""
    lines = [
        f"**{a.name}**: {a.rows} rows ({', '.join(f'{n} {k}' for k, n in a.kinds.items())}), sha256 `{a.sha256[:16]}…`",
        "",
        "| | |",
        "|---|---|",
        f"| task types | {', '.join(f'{t} {n}' for t, n in sorted(a.tasks.items()))} |",
        f"| exact duplicates | {a.exact_duplicates} |",
        f"| near duplicates (pairs) | {a.near_duplicates} |",
        f"| instruction templates | {'–' if a.template_count is None else a.template_count} ({a.template_method}) |",
        f"| tokens per row ({a.tokenizer}) | min {a.tokens['min']}, median {a.tokens['median']:g}, "
        f"p95 {a.tokens['p95']}, max {a.tokens['max']} |",
        f"| longer than max_length={a.max_length}, by task | "
        + ", ".join(f"{t} {s:.0%}" for t, s in a.truncated_by_task.items())
        + " |",
        f"| licences (rows) | {_licences(a.licenses)} |",
        f"| sources (rows) | {', '.join(f'{k} {n}' for k, n in a.licenses.get('sources', {}).items()) or '–'} |",
        f"| answers cut by max_length | {len(a.answer_cut)}"
        + (f" ({', '.join(map(clip, a.answer_cut[:5]))}{'…' if len(a.answer_cut) > 5 else ''})" if a.answer_cut else "")
        + " |",
    ]
    for w in a.warnings():
        lines.append(f"\n> ⚠️ {w}")
    if a.rendered:
        lines += ["", "First row exactly as the trainer renders it:", "", "```text", _shown(a.rendered[0]), "```"]
    return lines


def _shown(text: str) -> str:
    text = text.rstrip()
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}\n… ({len(text) - SHOWN_CHARS:,} more characters not shown)"


def _licences(lic: dict[str, Any]) -> str:
    if not lic:
        return "–"
    text = ", ".join(f"{k} {n}" for k, n in lic.get("licenses", {}).items()) or "–"
    if lic.get("card"):
        text += f" (dataset card: {lic['card']})"
    if lic.get("refused_rows"):
        text += f"; **{lic['refused_rows']} refused**"
    return text


def dedup(src: str | Path, dst: str | Path, *, fuzzy_cutoff: float = 90.0, near: bool = True) -> dict[str, int]:
    """Write `src` without exact duplicates (and, with `near`, without later near duplicates) to `dst`.
    Never overwrites `src`, nor an existing `dst`."""

    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise HarnessError(
            "output file exists and would be overwritten", where=str(dst), fix="choose a new output path"
        )
    if dst.resolve() == src.resolve():
        raise HarnessError("output is the input", where=str(dst), fix="write the deduplicated copy elsewhere")
    ts = read_text_set(str(src))
    dup = duplicates(ts, cutoff=fuzzy_cutoff)
    drop = set(dup.drop_lines if near else dup.exact_lines)
    if src.suffix == ".txt":  # documents (numbered by their first line), still separated by a blank line
        docs = [(item.line, item.text) for item in ts.items]
        kept, sep = [text for no, text in docs if no not in drop], "\n\n"
        rows = len(docs)
    else:
        raw = list(iter_lines(src))  # numbered as read_text_set numbers them (a line end is \n; BOM dropped)
        kept, sep = [line for no, line in raw if line.strip() and no not in drop], "\n"
        rows = sum(1 for _, line in raw if line.strip())
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(sep.join(kept) + "\n", encoding="utf-8")
    return {"read": rows, "written": len(kept), "exact_dropped": len(dup.exact_lines), "dropped": rows - len(kept)}


def audit_json(a: Audit) -> str:
    return json.dumps(a.to_dict(), indent=2)


@kind("audit", load=as_is, dump=as_is, load_data=None, cached=False, manifest_key="dataset_audit")
def _audit_kind(call: MeasureCall) -> list[dict[str, Any]]:
    """The dataset audit of each training set, for the report (a failed audit is noted, never fatal)."""
    env, out = call.env, []
    for spec in call.options["train"]:
        try:
            a = audit(
                spec,
                env.base_dir,
                tokenizer=env.base.id,
                tok_dir=tokenizer_dir(env.base, env.adapter),
                max_length=env.max_length,
            )
            out.append(a.to_dict())
        except Exception as e:  # the audit informs; it does not decide
            logging.getLogger(__name__).debug("audit failed", exc_info=True)
            out.append({"name": spec, "error": f"{type(e).__name__}: {e}"})
    return out
