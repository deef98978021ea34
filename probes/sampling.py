"""Batched sampling with the KV cache: n samples per prompt, rendered with the tokenizer's chat template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.kinds import MeasureCall, kind, to_dict
from harness.core.runtime import GenParams, HFRuntime
from harness.core.runtime.base import truncate_at_stop
from probes.checkers import check
from probes.results import ProbeOutcome, ProbeRun
from probes.suites import Suite, load_suite

__all__ = ["SamplingParams", "load_prompts", "run_suite", "sample", "truncate_at_stop"]


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
    batch_size: int = 64,
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
    batch_size: int = 64,
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
                item.category,
            )
        )
    return ProbeRun(tuple(items))


def load_prompts(spec: str, base_dir: Path | None = None, *, key: str | None = None) -> Suite:
    """A probe suite whose items may omit `check`: prompts for a judge, or for what ships."""
    return load_suite(spec, base_dir, key=key, check_optional=True)


@kind(  # like probes, but items need no check: the answers are for a judge
    "answers",
    load=ProbeRun.from_dict,
    dump=to_dict,
    runtime_options=frozenset({"batch_size"}),
    load_data=load_prompts,
    code=("probes.sampling", "harness.core.runtime.hf", "probes.checkers"),
)
@kind(
    "probes",
    load=ProbeRun.from_dict,
    dump=to_dict,
    runtime_options=frozenset({"batch_size"}),
    load_data=load_suite,
    code=("probes.sampling", "harness.core.runtime.hf", "probes.checkers", "probes.safety", "probes.sandbox"),
)
def _probes_kind(call: MeasureCall) -> ProbeRun:
    o = dict(call.options)
    batch_size, limit, stop = o.pop("batch_size"), o.pop("limit", None), tuple(o.pop("stop", ()))
    params = GenParams(stop=stop, **o)
    return run_suite(
        call.runtime(), call.data, params, batch_size=batch_size, description=call.description, limit=limit
    )
