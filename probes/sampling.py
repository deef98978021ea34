"""Batched sampling with the KV cache: n samples per prompt, rendered with the tokenizer's chat template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.runtime.base import truncate_at_stop

__all__ = ["SamplingParams", "sample", "truncate_at_stop"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 5
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int = 0
    stop: tuple[str, ...] = ()


def sample(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    params: SamplingParams,
    *,
    batch_size: int = 16,
    description: str = "sampling",
) -> list[list[str]]:
    """`params.n` completions for each conversation (temperature 0: greedy, one distinct completion copied),
    through the `hf` runtime (harness.runtime), the package's one generation loop."""
    from harness.runtime import GenParams, HFRuntime

    gp = GenParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        seed=params.seed,
        stop=params.stop,
    )
    runs = HFRuntime(model, tokenizer).generate(conversations, gp, batch_size=batch_size, description=description)
    return [[c.text for c in outs] for outs in runs]
