"""Measurement kinds: how each `MeasureRequest.kind` is computed on a loaded model and (de)serialised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness.data import Dataset, load_dataset
from harness.hashing import sha256_json, source_sha256
from harness.models import AdapterInfo
from probes.results import NLLMeasurement, ProbeOutcome, ProbeRun
from probes.suites import Suite, load_suite
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
    load_data: Callable[..., Any] = load_dataset  # (spec, base_dir, key=...) -> the data `run` reads
    code: tuple[str, ...] = ()  # modules whose source is part of the cache key (a changed checker re-measures)
    # pair kinds compare two variants' measurements: run(request, data, base, candidate, cache, base_dir); they
    # cache their own parts. `preflight(request, base_dir)` runs before any model loads (e.g. endpoint checks).
    pair: bool = False
    preflight: Callable[..., None] | None = None

    def code_sha256(self) -> str:
        return sha256_json([source_sha256(m) for m in self.code])


def _nll(model: Any, tokenizer: Any, dataset: Dataset, *, max_length: int, batch_size: int, description: str) -> Any:
    from probes.perplexity import measure_nll

    return measure_nll(model, tokenizer, dataset, max_length=max_length, batch_size=batch_size, description=description)


def _probes(
    model: Any,
    tokenizer: Any,
    suite: Suite,
    *,
    description: str,
    batch_size: int,
    stop: tuple = (),
    limit: int | None = None,
    **sampling: Any,
) -> ProbeRun:
    """Sample and check every item (or the first `limit`)."""
    from dataclasses import replace

    from harness.runtime import GenParams, HFRuntime
    from probes.checkers import check

    if limit is not None:
        suite = replace(suite, items=suite.items[:limit])

    rt = HFRuntime(model, tokenizer)
    params = GenParams(stop=tuple(stop), **sampling)
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


def _training_log(adapter: AdapterInfo, data: str, **_: Any) -> TrainingLog:
    return read_training_log(Path(data) if data else adapter.dir)


def _judge(req: Any, suite: Suite, base: ProbeRun, candidate: ProbeRun, cache: Any, base_dir: Path | None) -> Any:
    from judges.run import run_judge

    return run_judge(req.opts["spec"], suite, base, candidate, cache, base_dir)


def _judge_preflight(req: Any, base_dir: Path | None) -> None:
    from judges.run import preflight

    preflight(req.opts["spec"], base_dir)


def _contamination(req: Any, base_dir: Path | None, *_: Any) -> Any:
    from probes.contamination import contamination
    from probes.overlap import read_text_set

    o = req.opts
    evals = [read_text_set(s, base_dir, key="[gates.contamination] data") for s in o["evals"]]
    train = [read_text_set(s, base_dir, key="[gates.contamination] train") for s in o["train"]]
    return contamination(evals, train, n=o["n"], fuzzy_cutoff=o["fuzzy_cutoff"])


def _contamination_preflight(req: Any, base_dir: Path | None) -> None:
    from harness.errors import HarnessError

    o = req.opts
    if not o["train"]:
        raise HarnessError(
            "the contamination gate has no training data to check against",
            where="[gates.contamination] train",
            fix='set train = "path/to/train.jsonl", add a [fine_tune] section, or gate an adapter written by '
            "`harness train` (its training_manifest.json names its data)",
        )
    if not o["evals"]:
        raise HarnessError(
            "the contamination gate has no eval set to check",
            where="[gates.contamination] data",
            fix='set data = "path/to/eval.jsonl" (or enable other gates: their data is checked too)',
        )


def _ship(name: str) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        from harness.release import shipping

        return getattr(shipping, name)(*args)

    return run


def _serving(*args: Any) -> Any:
    from harness.release.serving import measure_serving

    return measure_serving(*args)


def _load_judge_run(d: dict[str, Any]) -> Any:
    from judges.protocol import JudgeRun

    return JudgeRun.from_dict(d)


KINDS: dict[str, MeasureKind] = {
    "probes": MeasureKind(
        run=_probes,
        load=ProbeRun.from_dict,
        dump=lambda m: m.to_dict(),
        runtime_options=frozenset({"batch_size"}),
        load_data=load_suite,
        code=("harness.runtime.hf", "probes.checkers", "probes.safety", "probes.sandbox"),
    ),
    "answers": MeasureKind(  # like probes, but items need no check: the answers are for a judge
        run=_probes,
        load=ProbeRun.from_dict,
        dump=lambda m: m.to_dict(),
        runtime_options=frozenset({"batch_size"}),
        load_data=partial(load_suite, check_optional=True),
        code=("harness.runtime.hf", "probes.checkers"),
    ),
    "judge": MeasureKind(
        run=_judge,
        load=_load_judge_run,
        dump=lambda m: m.to_dict(),
        needs_model=False,
        pair=True,
        preflight=_judge_preflight,
        code=("judges.protocol", "judges.backends"),
    ),
    "contamination": MeasureKind(  # about the data, not a model: measured once ("data" variant), not cached
        run=_contamination,
        load=lambda d: d,
        dump=lambda m: m.to_dict(),
        needs_model=False,
        preflight=_contamination_preflight,
    ),
    **{
        kind: MeasureKind(  # what ships (merge, GGUF, template): once per run, artifacts and numbers cached
            run=fn,
            load=lambda d: d,
            dump=lambda m: m,
            needs_model=False,
        )
        for kind, fn in (
            ("merge_parity", _ship("measure_merge")),
            ("gguf_parity", _ship("measure_gguf")),
            ("template_drift", _ship("measure_template")),
            ("rollback", _ship("measure_rollback")),
            ("serving", _serving),
        )
    },
    "training_log": MeasureKind(
        run=_training_log, load=TrainingLog.from_dict, dump=lambda m: m.to_dict(), needs_model=False
    ),
    "nll": MeasureKind(
        run=_nll,
        load=NLLMeasurement.from_dict,
        dump=lambda m: m.to_dict(),
        runtime_options=frozenset({"batch_size"}),
        code=("probes.perplexity", "harness.runtime.hf"),
    ),
}
