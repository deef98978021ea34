"""Closed-answer items scored option by option: the log-likelihood of each option as the answer's continuation.

An item is a prompt (a conversation, rendered with the chat template and its generation prompt, or raw text), the
options it may be answered with, and which option is right. Each option is scored as `answer_prefix + option`
after the prompt: the prefix and the option are encoded together (the tokenizer may merge across the seam) and only
the tokens past the prefix's own are summed. `calibration` turns the log-likelihoods into probabilities over the
options; nothing here decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.console import progress
from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, kind, to_dict
from harness.core.runtime.base import LoglikRequest, encode_prompt
from probes.results import ChoiceItem, ChoiceRun


@dataclass(frozen=True)
class ChoiceQuestion:
    id: str
    prompt: Any  # list of messages (chat) or a string (raw text)
    options: tuple[str, ...]
    answer: int  # index into options
    preview: str


def questions(
    dataset: Any, label: str, options: Sequence[str], *, limit: int = 0, where: str = "[gates.calibration]"
) -> list[ChoiceQuestion]:
    """The items of `dataset` whose field `label` names the right option. Options come from `options`, else from
    the row's own `choices` field (a list; `label` is then the right one's text or index), else from every value
    `label` takes in the data (sorted). A row whose answer is not among its options is an error naming its line."""
    records = list(dataset.records)
    if not options and not any("choices" in r.meta for r in records):
        options = sorted({str(r.meta[label]) for r in records if label in r.meta})
    out: list[ChoiceQuestion] = []
    for r in records:
        opts = tuple(str(o) for o in (r.meta.get("choices") or options))
        if label not in r.meta:
            raise HarnessError(
                f"row {r.id!r} has no {label!r} field (the right option)",
                where=f"{dataset.path}:{r.line}",
                fix=f'give every row "{label}": one of {list(opts)[:6]}, or set label = "FIELD" in {where}',
            )
        value = r.meta[label]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(opts) and "choices" in r.meta:
            answer = value
        elif str(value) in opts:
            answer = opts.index(str(value))
        else:
            raise HarnessError(
                f"row {r.id!r}: its answer {value!r} is not one of the options {list(opts)}",
                where=f"{dataset.path}:{r.line}",
                fix=f"add it to options in {where}, or correct the row",
            )
        if len(opts) < 2:
            raise HarnessError(
                f"row {r.id!r} has {len(opts)} option(s); calibration needs at least two",
                where=f"{dataset.path}:{r.line}",
                fix=f"set options = [...] in {where} or give rows a choices list",
            )
        if r.is_chat:
            msgs = list(r.messages or ())
            while msgs and msgs[-1]["role"] == "assistant":  # the reference answer is not part of the prompt
                msgs.pop()
            prompt: Any = msgs
        else:
            prompt = r.text or ""
        out.append(ChoiceQuestion(r.id, prompt, opts, answer, r.preview(300)))
        if limit and len(out) >= limit:
            break
    return out


def _encode_answer(tok: Any, prefix: str, option: str) -> tuple[list[int], int]:
    """`prefix + option` encoded together (the tokenizer may merge across the seam, as lm-eval's context and
    continuation are), and how many of its last tokens are the option's: those past the prefix's own encoding."""
    whole = tok(prefix + option, add_special_tokens=False)["input_ids"]
    head = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    k = 0
    while k < min(len(head), len(whole)) and head[k] == whole[k]:
        k += 1
    return whole, max(len(whole) - k, 1)


def _one_pass(runtime: Any, encoded: list[list[tuple[list[int], int]]], description: str | None) -> Any:
    """Every option one token after the same context (the demo's severities): one forward pass an item gives all
    of them, a quarter of the work of one request an option. None when an engine serves no logits (or an option
    is longer), and the caller scores each option as its own request; the two agree to float rounding."""

    if not all(k == 1 and len({tuple(ids[:-1]) for ids, _ in opts}) == 1 for opts in encoded for ids, k in opts):
        return None
    out: list[list[float]] = []
    with progress(disable=description is None) as bar:
        task = bar.add_task(description or "scoring", total=len(encoded))
        for opts in encoded:
            try:
                last = runtime.logits(opts[0][0][:-1])[-1]
            except NotImplementedError:
                return None
            lse = float(last.double().logsumexp(dim=-1))
            out.append([float(last[ids[-1]]) - lse for ids, _ in opts])
            bar.advance(task)
    return out


def _per_option(
    runtime: Any, encoded: list[list[tuple[list[int], int]]], batch_size: int, description: str | None
) -> list[list[float]]:
    reqs, owner = [], []
    for i, opts in enumerate(encoded):
        for ids, scored in opts:
            n = len(ids) - 1
            reqs.append(LoglikRequest(ids, [False] * (n - scored) + [True] * scored))
            owner.append(i)
    order = sorted(range(len(reqs)), key=lambda j: -len(reqs[j].ids))  # similar lengths batch together
    got = runtime.loglik([reqs[j] for j in order], batch_size=batch_size, description=description)
    lls = [0.0] * len(reqs)
    for j, ll in zip(order, got, strict=True):
        lls[j] = ll
    per: list[list[float]] = [[] for _ in encoded]
    for j, i in enumerate(owner):
        per[i].append(lls[j])
    return per


def score_choices(
    runtime: Any,
    items: Sequence[ChoiceQuestion],
    *,
    answer_prefix: str = "",
    batch_size: int = 8,
    description: str | None = None,
) -> ChoiceRun:
    """Log-likelihood of every option of every item under `runtime` (one request per option, batched)."""

    tok = runtime.tok
    encoded = []
    for q in items:
        ctx = encode_prompt(tok, q.prompt) if isinstance(q.prompt, list) else tok(q.prompt)["input_ids"]
        encoded.append([(list(ctx) + a, k) for a, k in (_encode_answer(tok, answer_prefix, o) for o in q.options)])
    per = _one_pass(runtime, encoded, description)
    if per is None:
        per = _per_option(runtime, encoded, batch_size, description)
    return ChoiceRun(
        tuple(
            ChoiceItem(q.id, q.preview, q.options, tuple(round(x, 6) for x in per[i]), q.answer)
            for i, q in enumerate(items)
        ),
        answer_prefix,
    )


@kind(  # closed-answer items: each option's log-likelihood (the calibration gate)
    "choices",
    load=ChoiceRun.from_dict,
    dump=to_dict,
    runtime_options=frozenset({"batch_size", "key"}),
    code=("probes.choices", "harness.core.runtime.hf"),
    shared_tokens=True,
)
def _choices_kind(call: MeasureCall) -> ChoiceRun:
    o = call.options
    items = questions(call.data, o["label"], o["options"], limit=o["limit"], where=o["key"])
    return score_choices(
        call.runtime(),
        items,
        answer_prefix=o["answer_prefix"],
        batch_size=o["batch_size"],
        description=call.description,
    )
