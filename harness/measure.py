"""Measurement kinds: how each `MeasureRequest.kind` is computed on a loaded model and (de)serialised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import Dataset
from harness.models import AdapterInfo
from probes.results import NLLMeasurement
from probes.training_log import TrainingLog, read_training_log


@dataclass(frozen=True)
class MeasureKind:
    """How one kind of measurement runs. With `needs_model`, `run(model, tokenizer, dataset, **options)`;
    without, `run(adapter, data, **options)` (cheap reads such as a training log, never cached)."""

    run: Callable[..., Any]
    load: Callable[[dict[str, Any]], Any]
    dump: Callable[[Any], dict[str, Any]]
    runtime_options: frozenset[str] = frozenset()  # options that cannot change the result (not in the cache key)
    needs_model: bool = True


def _nll(model: Any, tokenizer: Any, dataset: Dataset, *, max_length: int, batch_size: int, description: str) -> Any:
    from probes.perplexity import measure_nll

    return measure_nll(model, tokenizer, dataset, max_length=max_length, batch_size=batch_size, description=description)


def _training_log(adapter: AdapterInfo, data: str, **_: Any) -> TrainingLog:
    return read_training_log(Path(data) if data else adapter.dir)


KINDS: dict[str, MeasureKind] = {
    "training_log": MeasureKind(
        run=_training_log, load=TrainingLog.from_dict, dump=lambda m: m.to_dict(), needs_model=False
    ),
    "nll": MeasureKind(
        run=_nll,
        load=NLLMeasurement.from_dict,
        dump=lambda m: m.to_dict(),
        runtime_options=frozenset({"batch_size"}),
    ),
}
