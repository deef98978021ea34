"""Do two builds of one model behave the same? Next-token distributions on fixed prompts (max |delta logit|,
mean KL, top-1 agreement) and greedy completions, plus tokenizer parity (ids of probe strings, specials)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.core.runtime import GenParams


@dataclass(frozen=True)
class Parity:
    max_abs_logit: float
    mean_kl: float  # KL(reference || other), nats, mean over every position of every prompt
    top1: float  # share of positions whose argmax agrees
    greedy_equal: float  # share of prompts whose greedy completions are token-for-token equal
    positions: int
    prompts: int
    differing: list[dict[str, str]] = field(default_factory=list)  # greedy completions that differ (up to 3)
    # top-1 agreement where the reference's top token leads its runner-up by at least TIE_MARGIN: a near-tie's
    # argmax flips under any rounding (F16 weights move logits by ~0.05) and says nothing about the export
    top1_decisive: float = 1.0
    decisive_positions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TIE_MARGIN = 0.1  # logits; a top-1 lead below it is a near-tie


def render(tok: Any, messages: list[dict[str, str]]) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True)
class Reference:
    """The reference build's greedy answer and next-token logits on each prompt, computed once and compared
    with any number of other builds."""

    prompts: list[list[int]]  # prompt ids (the reference tokenizer's)
    answers: list[Any]  # harness.core.runtime.Completion, greedy
    logits: list[Any]  # [prompt + answer tokens, vocab] float32
    previews: list[str]


def reference(ref: Any, conversations: list[list[dict[str, str]]], *, max_new_tokens: int = 24, eos=None) -> Reference:
    """Run the reference runtime once: its greedy answers (ended at `eos`, else the model's own config) and
    its logits over the prompt and its own continuation."""

    params = GenParams(max_new_tokens=max_new_tokens, eos=tuple(eos) if eos else "config")
    prompts = [ref.encode(conv) for conv in conversations]
    answers = [ref.generate_one(ids, params) for ids in prompts]
    logits = [ref.logits(ids + list(a.token_ids)) for ids, a in zip(prompts, answers, strict=True)]
    previews = [conv[-1]["content"][:200] for conv in conversations]
    return Reference(prompts, answers, logits, previews)


def compare(ref: Reference, other: Any, *, max_new_tokens: int = 24, eos=None) -> Parity:
    """`other` (a runtime) is fed exactly the reference's token ids (tokenizer parity is checked separately):
    greedy completions through `generate`, distributions through `logits`."""
    import torch

    params = GenParams(max_new_tokens=max_new_tokens, eos=tuple(eos) if eos else "config")
    max_abs, kl_sum, agree, positions, equal, differing = 0.0, 0.0, 0, 0, 0, []
    agree_decisive, decisive = 0, 0
    for ids, gen_a, la, preview in zip(ref.prompts, ref.answers, ref.logits, ref.previews, strict=True):
        gen_b = other.generate_one(ids, params)
        lb = other.logits(ids + list(gen_a.token_ids))  # the prompt and the reference's own continuation
        max_abs = max(max_abs, float((la - lb).abs().max()))
        pa, lpb = torch.log_softmax(la, -1), torch.log_softmax(lb, -1)
        kl_sum += float((pa.exp() * (pa - lpb)).sum(-1).sum())
        same_top = la.argmax(-1) == lb.argmax(-1)
        agree += int(same_top.sum())
        top2 = la.topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) >= TIE_MARGIN
        agree_decisive += int((same_top & clear).sum())
        decisive += int(clear.sum())
        positions += la.shape[0]
        same = gen_a.token_ids == gen_b.token_ids
        equal += same
        if not same and len(differing) < 3:
            differing.append({"prompt": preview, "reference": gen_a.text, "other": gen_b.text})
    return Parity(
        max_abs_logit=max_abs,
        mean_kl=kl_sum / max(positions, 1),
        top1=agree / max(positions, 1),
        greedy_equal=equal / max(len(ref.prompts), 1),
        positions=positions,
        prompts=len(ref.prompts),
        differing=differing,
        top1_decisive=agree_decisive / max(decisive, 1),
        decisive_positions=decisive,
    )


PROBE_STRINGS = (
    "Hello, world!",
    "The payments API returned 503 errors at 09:41.",
    '{"severity": "high", "category": "outage"}',
    "  leading spaces, tabs\tand\nnew lines  ",
    "Ünïcödé, emoji 🚀 and CJK 漢字",
    "def f(x):\n    return x ** 2",
)


def tokenizer_parity(a: Any, b: Any, conversations: list[list[dict[str, str]]]) -> dict[str, Any]:
    """Token ids of probe strings and of rendered conversations, and the special ids, in both tokenizers."""
    mism = []
    for s in PROBE_STRINGS:
        if a(s, add_special_tokens=False)["input_ids"] != b(s, add_special_tokens=False)["input_ids"]:
            mism.append(s)
    rendered = 0
    for conv in conversations:
        ta, tb = render(a, conv), render(b, conv)
        if a(ta, add_special_tokens=False)["input_ids"] != b(tb, add_special_tokens=False)["input_ids"]:
            rendered += 1
    specials = {k: (getattr(a, k), getattr(b, k)) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    return {
        "strings_checked": len(PROBE_STRINGS),
        "strings_differing": mism,
        "conversations_checked": len(conversations),
        "conversations_differing": rendered,
        "specials": {k: list(v) for k, v in specials.items()},
        "specials_equal": all(x == y for x, y in specials.values()),
    }
