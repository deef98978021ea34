"""Batched sampling with the KV cache: n samples per prompt, rendered with the tokenizer's chat template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.core.runtime import GenParams, HFRuntime
from harness.core.runtime.base import truncate_at_stop
from probes.checkers import check
from probes.results import ProbeOutcome, ProbeRun

__all__ = ["SamplingParams", "run_suite", "sample", "truncate_at_stop"]


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
    through the `hf` runtime (harness.core.runtime), the package's one generation loop."""

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


def run_suite(
    rt: Any,
    suite: Any,
    params: Any,
    *,
    batch_size: int = 16,
    description: str | None = None,
    limit: int | None = None,
) -> Any:
    """Generate for every item of a probe suite (or the first `limit`) through runtime `rt` and check each
    answer with the item's checker: a `ProbeRun` with texts, pass/fail, parsed answers and token counts."""
    from dataclasses import replace

    if limit is not None:
        suite = replace(suite, items=suite.items[:limit])
    runs = rt.generate([list(i.messages) for i in suite.items], params, batch_size=batch_size, description=description)
    items = []
    for item, outs in zip(suite.items, runs, strict=True):
        results = [check(item.check, c.text) for c in outs]
        items.append(
            ProbeOutcome(
                item.id,
                item.preview(),
                tuple(c.text for c in outs),
                tuple(r.passed for r in results),
                tuple(r.parsed for r in results),
                tuple(r.detail for r in results),
                tuple(c.length for c in outs),
            )
        )
    return ProbeRun(tuple(items))
