"""Batched sampling with the KV cache: n samples per prompt, rendered with the tokenizer's chat template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    n: int = 5
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int = 0
    stop: tuple[str, ...] = ()


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def sample(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    params: SamplingParams,
    *,
    batch_size: int = 16,
    description: str = "sampling",
) -> list[list[str]]:
    """`params.n` completions for each conversation (temperature 0: greedy, one distinct completion copied)."""
    import torch

    from fine_tune.preflight import end_of_turn_ids
    from harness.console import progress

    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    greedy = params.temperature == 0
    per_prompt = 1 if greedy else params.n
    prompts_per_batch = max(1, batch_size // per_prompt)
    device = next(model.parameters()).device
    eos = sorted(end_of_turn_ids(tokenizer))
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    out: list[list[str]] = []
    try:
        with progress() as bar, torch.inference_mode():
            task = bar.add_task(description, total=len(texts))
            for b, start in enumerate(range(0, len(texts), prompts_per_batch)):
                chunk = texts[start : start + prompts_per_batch]
                enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                torch.manual_seed(params.seed + b)
                gen = model.generate(
                    **enc,
                    do_sample=not greedy,
                    temperature=params.temperature if not greedy else None,
                    top_p=params.top_p if not greedy else None,
                    top_k=None,
                    max_new_tokens=params.max_new_tokens,
                    num_return_sequences=per_prompt,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=eos,
                    use_cache=True,
                    stop_strings=list(params.stop) or None,
                    tokenizer=tokenizer if params.stop else None,
                )
                new = gen[:, enc["input_ids"].shape[1] :]
                decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
                for i in range(len(chunk)):
                    outs = [truncate_at_stop(t, params.stop) for t in decoded[i * per_prompt : (i + 1) * per_prompt]]
                    out.append(outs * params.n if greedy else outs)
                bar.advance(task, len(chunk))
    finally:
        tokenizer.padding_side = old_side
    return out
