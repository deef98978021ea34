"""Measurement kinds: how each `MeasureRequest.kind` is computed on a loaded model and (de)serialised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.data import Dataset
from probes.results import NLLMeasurement


@dataclass(frozen=True)
class MeasureKind:
    run: Callable[..., Any]  # (model, tokenizer, dataset, **options) -> result
    load: Callable[[dict[str, Any]], Any]
    dump: Callable[[Any], dict[str, Any]]
    runtime_options: frozenset[str] = frozenset()  # options that cannot change the result (not in the cache key)
    needs_chat_template: bool = False


def _nll(model: Any, tokenizer: Any, dataset: Dataset, *, max_length: int, batch_size: int, description: str) -> Any:
    from probes.perplexity import measure_nll

    return measure_nll(model, tokenizer, dataset, max_length=max_length, batch_size=batch_size, description=description)


KINDS: dict[str, MeasureKind] = {
    "nll": MeasureKind(
        run=_nll,
        load=NLLMeasurement.from_dict,
        dump=lambda m: m.to_dict(),
        runtime_options=frozenset({"batch_size"}),
    ),
}
