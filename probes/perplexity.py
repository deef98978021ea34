"""Token-level NLL over non-overlapping windows, scored by a runtime's `loglik` (batched, `inference_mode`).

Text rows score every token (a BOS is prepended when the tokenizer has one, so the first token is
scored too). Chat rows are rendered with the tokenizer's chat template and score the last assistant
turn only: that is what a fine-tune changes. Windows hold at most `max_length` tokens; window k
starts where window k-1's last target was, so each target token is scored exactly once, with the
previous token as minimum context (lm-eval's rolling windows with no overlap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.core.data import Dataset, Record
from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, kind, to_dict
from harness.core.runtime import HFRuntime, LoglikRequest
from probes.results import DocNLL, NLLMeasurement


@dataclass(frozen=True)
class EncodedDoc:
    ids: list[int]
    scored: list[bool]  # scored[i]: token i is a target whose NLL counts


def encode_record(rec: Record, tokenizer: Any, where: str = "") -> EncodedDoc:
    if rec.text is not None:
        ids = tokenizer(rec.text, add_special_tokens=False)["input_ids"]
        bos = tokenizer.bos_token_id
        prefix = [bos] if bos is not None else []
        scored = [False] * len(prefix) + [True] * len(ids)
        ids = prefix + ids
        scored[0] = False  # the first token has no context to be predicted from
        return EncodedDoc(ids, scored)
    msgs = list(rec.messages or ())
    if not msgs or msgs[-1]["role"] != "assistant":
        raise HarnessError(
            "chat row must end with an assistant turn to be scored",
            where=f"{where}:{rec.line}",
            fix='add the expected answer as the last message with role "assistant" (or a "completion")',
        )
    if not getattr(tokenizer, "chat_template", None):
        raise HarnessError(
            "tokenizer has no chat template to render chat rows",
            where=where,
            fix="use a chat tokenizer or give the data as text rows",
        )
    prompt_text = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(msgs, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise HarnessError(
            "the chat template renders the prompt differently with and without the answer",
            where=f"{where}:{rec.line}",
            fix="fix the chat template so the generation prompt is a prefix",
        )
    enc = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    scored = [start >= len(prompt_text) for start, _ in enc["offset_mapping"]]
    return EncodedDoc(ids, scored)


def windows(doc: EncodedDoc, max_length: int) -> list[tuple[list[int], list[bool]]]:
    """Split into inputs of <= max_length tokens; returns (input ids, target mask for ids[1:])."""
    out = []
    n = len(doc.ids)
    for start in range(0, max(n - 1, 0), max_length - 1):
        inp = doc.ids[start : start + max_length]
        mask = doc.scored[start + 1 : start + len(inp)]
        if any(mask):
            out.append((inp, mask))
    return out


def measure_nll(
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    *,
    max_length: int = 1024,
    batch_size: int = 8,
    description: str = "perplexity",
) -> NLLMeasurement:
    """`nll` of a loaded transformers model and its tokenizer."""

    return nll(
        HFRuntime(model, tokenizer), dataset, max_length=max_length, batch_size=batch_size, description=description
    )


def nll(
    rt: Any,
    dataset: Dataset,
    *,
    max_length: int = 1024,
    batch_size: int = 8,
    description: str = "perplexity",
) -> NLLMeasurement:
    """Summed NLL (nats), scored tokens and bytes for each document of `dataset`, through runtime `rt`'s
    `loglik` (windows of at most `max_length` tokens, capped at the model's context)."""

    tokenizer = rt.tok
    context = rt.context_length() or max_length
    L = max(2, min(max_length, context))
    docs = [encode_record(r, tokenizer, str(dataset.path)) for r in dataset.records]
    items = []  # (doc index, input ids, target mask)
    for i, d in enumerate(docs):
        ws = windows(d, L)
        if not ws:
            rec = dataset.records[i]
            raise HarnessError(
                "row has no tokens to score", where=f"{dataset.path}:{rec.line}", fix="remove empty rows"
            )
        items += [(i, inp, mask) for inp, mask in ws]
    items.sort(key=lambda t: -len(t[1]))  # similar lengths together: less padding
    logliks = rt.loglik(
        [LoglikRequest(inp, mask) for _, inp, mask in items], batch_size=batch_size, description=description
    )
    nll = [0.0] * len(docs)
    for (doc_i, _, _), ll in zip(items, logliks, strict=True):
        nll[doc_i] += -ll
    out = []
    for i, (rec, d) in enumerate(zip(dataset.records, docs, strict=True)):
        scored_ids = [t for t, s in zip(d.ids, d.scored, strict=True) if s]
        nbytes = len(tokenizer.decode(scored_ids).encode("utf-8"))
        out.append(DocNLL(id=rec.id, nll=nll[i], tokens=len(scored_ids), bytes=max(nbytes, 1), preview=rec.preview()))
    scored = "completion" if any(r.is_chat for r in dataset.records) else "all"
    return NLLMeasurement(tuple(out), max_length=L, scored=scored)


@kind(
    "nll",
    load=NLLMeasurement.from_dict,
    dump=to_dict,
    runtime_options=frozenset({"batch_size"}),
    code=("probes.perplexity", "harness.core.runtime.hf"),
    shared_tokens=True,
)
def _nll_kind(call: MeasureCall) -> NLLMeasurement:
    o = call.options
    return nll(
        call.runtime(), call.data, max_length=o["max_length"], batch_size=o["batch_size"], description=call.description
    )
