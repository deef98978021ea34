"""Preference pairs scored by log-likelihood: how strongly a model prefers the chosen answer to the rejected one.

Each pair's prompt is rendered with the tokenizer's chat template and its generation prompt (`encode_prompt`, as
every engine renders prompts), and each answer is scored as its continuation: the sum of the answer tokens'
log-probabilities, through `Runtime.loglik`, so the hf, vllm and openai engines all measure it. The prompt and the
answer are encoded together (a tokenizer may merge tokens across the seam; as lm-eval's context and continuation,
the tokens past the prompt's own are the answer's).

The end of the answer is scored too: when the chat template closes assistant turns with an end-of-turn marker
(`<|im_end|>`, `<|eot_id|>`, ...: `harness.core.chat.template_eot_id`, the token generation stops at), that token
follows the answer and counts as one of its tokens. So a score is the probability of the answer being the whole
answer, not only its beginning (a model that would go on past the rejected answer's last word is not credited with
it), as DPO scores a completion with its end token. A template with no such marker scores the answer text alone;
the marker scored is recorded in the result.

Nothing here decides: the `preference` gate compares the scores (summed, or per answer token) of reference and
candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.core.chat import template_eot_id
from harness.core.data import clip
from harness.core.errors import HarnessError
from harness.core.kinds import MeasureCall, kind, to_dict
from harness.core.pairs import PairSet, PreferencePair, load_pairs
from harness.core.runtime.base import LoglikRequest, encode_prompt
from probes.results import PairScore, PreferenceRun

SHOWN_CHARS = 300  # how much of a prompt or answer the result keeps for the report


def end_of_turn(tok: Any) -> tuple[str, int | None]:
    """The marker that closes an assistant turn in the tokenizer's chat template and its id; ("", None) when the
    template has none (the answer text alone is scored)."""
    template = getattr(tok, "chat_template", None) or ""
    eid = template_eot_id(tok) if template else None
    if eid is None:
        return "", None
    marker = tok.convert_ids_to_tokens(eid)
    return (marker, eid) if isinstance(marker, str) and marker in template else ("", None)


def encode_pair(tok: Any, pair: PreferencePair, eot: int | None) -> tuple[list[int], list[int], int, int]:
    """(chosen ids, rejected ids, answer tokens of each): the prompt's ids followed by the answer's (and `eot`); the
    answer tokens are those past the longest prefix the whole shares with the prompt's own encoding."""
    prompt = list(pair.prompt)
    ctx = encode_prompt(tok, prompt)
    text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    out: list[Any] = []
    for answer in (pair.chosen, pair.rejected):
        whole = tok(text + answer, add_special_tokens=False)["input_ids"]
        k = 0
        while k < min(len(ctx), len(whole)) and ctx[k] == whole[k]:
            k += 1
        k = max(min(k, len(whole) - 1), 1)  # at least one answer token, and one token of context to predict it
        ids = list(whole) + ([eot] if eot is not None else [])
        out.append((ids, len(ids) - k))
    (c_ids, c_n), (r_ids, r_n) = out
    return c_ids, r_ids, c_n, r_n


def _fit(ids: list[int], n: int, limit: int | None, pair: PreferencePair, where: str) -> LoglikRequest:
    """The request scoring the last `n` tokens of `ids`, the prompt cut from the left to fit `limit` tokens."""
    if limit and len(ids) > limit:
        if n + 1 > limit:
            raise HarnessError(
                f"pair {clip(pair.id)!r}: an answer of {n} tokens does not fit the model's context of {limit} tokens",
                where=f"{where}:{pair.line}",
                fix="shorten the answer, or drop the pair",
            )
        ids = ids[len(ids) - limit :]  # the prompt's oldest tokens go first (lm-eval cuts the context the same way)
    return LoglikRequest(ids, [False] * (len(ids) - 1 - n) + [True] * n)


def score_pairs(
    runtime: Any,
    pairs: Sequence[PreferencePair],
    *,
    batch_size: int = 8,
    where: str = "",
    description: str | None = None,
) -> PreferenceRun:
    """The log-likelihood of each pair's chosen and rejected answer under `runtime` (two requests a pair, batched;
    longest first, so similar lengths share a batch)."""
    tok = runtime.tok
    marker, eot = end_of_turn(tok)
    limit = runtime.context_length()
    reqs: list[LoglikRequest] = []
    sizes: list[tuple[int, int]] = []
    for p in pairs:
        c_ids, r_ids, c_n, r_n = encode_pair(tok, p, eot)
        reqs += [_fit(c_ids, c_n, limit, p, where), _fit(r_ids, r_n, limit, p, where)]
        sizes.append((c_n, r_n))
    order = sorted(range(len(reqs)), key=lambda j: -len(reqs[j].ids))
    got = runtime.loglik([reqs[j] for j in order], batch_size=batch_size, description=description) if reqs else []
    lls = [0.0] * len(reqs)
    for j, ll in zip(order, got, strict=True):
        lls[j] = float(ll)
    return PreferenceRun(
        tuple(
            PairScore(
                id=p.id,
                prompt=p.preview(SHOWN_CHARS),
                chosen=clip(p.chosen, SHOWN_CHARS),
                rejected=clip(p.rejected, SHOWN_CHARS),
                ll_chosen=round(lls[2 * i], 6),
                ll_rejected=round(lls[2 * i + 1], 6),
                n_chosen=sizes[i][0],
                n_rejected=sizes[i][1],
            )
            for i, p in enumerate(pairs)
        ),
        marker,
    )


def selected(data: PairSet, options: Any) -> tuple[PreferencePair, ...]:
    """The pairs a request measures: the first `limit` (0: all), then a look's slice `pairs` = (start, stop)."""
    pairs = data.pairs
    if options.get("limit"):
        pairs = pairs[: options["limit"]]
    if options.get("pairs") is not None:
        start, stop = options["pairs"]
        pairs = pairs[start:stop]
    return pairs


@kind(  # held-out preference pairs: each answer's log-likelihood (the preference gate)
    "preference",
    load=PreferenceRun.from_dict,
    dump=to_dict,
    load_data=load_pairs,
    runtime_options=frozenset({"batch_size", "key"}),
    code=("probes.preference", "harness.core.pairs", "harness.core.chat", "harness.core.runtime.hf"),
    shared_tokens=False,  # each model compares its own two scores: the tokenizers may differ
)
def _preference_kind(call: MeasureCall) -> PreferenceRun:
    o = call.options
    return score_pairs(
        call.runtime(),
        selected(call.data, o),
        batch_size=o.get("batch_size", 8),
        where=str(call.data.path),
        description=call.description,
    )
