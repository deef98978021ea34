"""Do two builds of one model behave the same? Next-token distributions on fixed prompts (max |delta logit|,
mean KL, top-1 agreement) and greedy completions, plus tokenizer parity (ids of probe strings, specials)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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


def compare(
    ref: Any,
    ref_tok: Any,
    other: Any,
    conversations: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 24,
    eos: list[int] | None = None,
) -> Parity:
    """`other` is fed exactly the reference's token ids (tokenizer parity is checked separately). Both run as
    `hf` runtimes: greedy completions through `generate`, distributions through `logits`."""
    import torch

    from harness.runtime import GenParams, HFRuntime

    ra, rb = HFRuntime(ref, ref_tok), HFRuntime(other, ref_tok)
    params = GenParams(max_new_tokens=max_new_tokens, eos=tuple(eos) if eos else "config")
    max_abs, kl_sum, agree, positions, equal, differing = 0.0, 0.0, 0, 0, 0, []
    agree_decisive, decisive = 0, 0
    for conv in conversations:
        ids = ra.encode(conv)
        gen_a, gen_b = ra.generate_one(ids, params), rb.generate_one(ids, params)
        full = ids + list(gen_a.token_ids)  # score the prompt and the reference's own continuation
        la, lb = ra.logits(full), rb.logits(full)
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
            differing.append({"prompt": conv[-1]["content"][:200], "reference": gen_a.text, "other": gen_b.text})
    return Parity(
        max_abs_logit=max_abs,
        mean_kl=kl_sum / max(positions, 1),
        top1=agree / max(positions, 1),
        greedy_equal=equal / max(len(conversations), 1),
        positions=positions,
        prompts=len(conversations),
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
