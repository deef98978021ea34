"""The measurement registry: each `MeasureRequest.kind`, with one calling convention.

A kind's `run(call: MeasureCall) -> result` gets everything it may use in `call`: the request, the variant it
measures, the data set loaded by the kind's `load_data`, the runtimes of the release (`call.runtime()` is the
variant's own), and, for a comparison of two variants (`pair`), the source measurement of each. It returns a
typed result that its `dump` / `load` (de)serialise. The pipeline caches every kind the same way, under
`harness.core.cache.measurement_key` (model identity, data hash, options, the measuring code's hash).

Variants: `base` and `candidate` measure one runtime each; `data` runs once per release (about the data, or
what ships: the merge, the GGUFs); `pair` runs once both variants of its source request are measured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fine_tune.audit import audit
from gates.registry import MeasureRequest
from harness.core.cache import MeasurementCache
from harness.core.data import load_dataset
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file, sha256_json, source_sha256
from harness.core.models import AdapterInfo, BaseModel, tokenizer_dir
from harness.core.runtime import GenParams
from harness.release import shipping
from harness.release.serving import measure_serving
from judges.protocol import JudgeRun
from judges.run import get_backend, preflight, run_judge
from probes.choices import questions, score_choices
from probes.contamination import contamination
from probes.lmeval import TaskSpec, check_tasks, run_tasks, task_files
from probes.overlap import read_text_set
from probes.perplexity import nll
from probes.results import ChoiceRun, NLLMeasurement, ProbeRun, TaskSuiteRun
from probes.sampling import run_suite
from probes.suites import load_suite
from probes.training_log import TrainingLog, read_training_log


@dataclass(frozen=True)
class MeasureEnv:
    """The release being measured: its models and files, shared by every measurement of a run. `base` and
    `adapter` are what ships (the candidate's weights, and its adapter when it is one: None for a full
    checkpoint); the variants' runtimes come from `runtimes`."""

    base: BaseModel
    adapter: AdapterInfo | None
    runtimes: Any  # harness.core.runtime.load.Runtimes: variant -> runtime, opened on first use
    cache: MeasurementCache  # for the resumable parts of a long measurement (each judgement)
    base_dir: Path | None = None
    max_length: int = 512  # the training's max_length (the data audit's truncation check)


@dataclass(frozen=True)
class MeasureCall:
    """One measurement to make: what a kind's `run` reads."""

    request: MeasureRequest
    variant: str  # base | candidate | data | pair
    env: MeasureEnv
    data: Any = None  # what the kind's `load_data` read for `request.data` (None for kinds that read none)
    options: Mapping[str, Any] = field(default_factory=dict)  # the request's options, a look's slice taken out
    inputs: Mapping[str, Any] = field(default_factory=dict)  # pair: the source measurement of each variant
    description: str = ""

    def runtime(self, variant: str | None = None, *, dtype: str | None = None, local: bool = False) -> Any:
        """The runtime of `variant` (default: the one measured); `local`: in-process even when it is served."""
        return self.env.runtimes.get(variant or self.variant, dtype=dtype, local=local)


@dataclass(frozen=True)
class MeasureKind:
    """How one kind of measurement runs and is stored."""

    run: Callable[[MeasureCall], Any]
    load: Callable[[Any], Any]
    dump: Callable[[Any], Any]
    load_data: Callable[..., Any] | None = load_dataset  # (spec, base_dir, key=...) -> data; None: reads none
    runtime_options: frozenset[str] = frozenset()  # options that cannot change the result (not in the cache key)
    code: tuple[str, ...] = ()  # modules whose source is part of the cache key (a changed checker re-measures)
    cached: bool = True  # False: cheap reads of files that may change under the same name (a training log)
    keep: Callable[[Any], bool] = lambda value: True  # a result that depends on the environment is not kept
    preflight: Callable[[MeasureRequest, Path | None], None] | None = None  # before any model loads
    manifest_key: str | None = None  # the result is also recorded in the run manifest under this key
    # what else the result depends on, for the cache key (a judge model's identity: its weights or endpoint)
    identity: Callable[[MeasureRequest, Path | None], Any] | None = None
    shared_tokens: bool = False  # compares per-token numbers: reference and candidate must share a tokenizer

    def code_sha256(self) -> str:
        return sha256_json([source_sha256(m) for m in self.code])


def _dump(m: Any) -> Any:
    return m.to_dict()


def _same(d: Any) -> Any:
    return d


# -- model measurements ------------------------------------------------------------------------------------


def _nll(call: MeasureCall) -> NLLMeasurement:
    o = call.options
    return nll(
        call.runtime(), call.data, max_length=o["max_length"], batch_size=o["batch_size"], description=call.description
    )


def _probes(call: MeasureCall) -> ProbeRun:
    o = dict(call.options)
    batch_size, limit, stop = o.pop("batch_size"), o.pop("limit", None), tuple(o.pop("stop", ()))
    params = GenParams(stop=stop, **o)
    return run_suite(
        call.runtime(), call.data, params, batch_size=batch_size, description=call.description, limit=limit
    )


def _choices(call: MeasureCall) -> Any:
    o = call.options
    items = questions(call.data, o["label"], o["options"], limit=o["limit"], where=o["key"])
    return score_choices(
        call.runtime(),
        items,
        answer_prefix=o["answer_prefix"],
        batch_size=o["batch_size"],
        description=call.description,
    )


def lmeval_spec(options: Mapping[str, Any]) -> Any:
    """The `probes.lmeval.TaskSpec` of an `lmeval` request's options."""

    o = options
    return TaskSpec(tuple(o["tasks"]), tuple(o["task_paths"]), o["limit"], o["num_fewshot"], o["seed"])


def _lmeval(call: MeasureCall) -> Any:
    spec, o = lmeval_spec(call.options), call.options
    return run_tasks(
        call.runtime(), spec, call.env.base_dir, batch_size=o["batch_size"], label=call.variant, where=o["key"]
    )


def _lmeval_preflight(req: MeasureRequest, base_dir: Path | None) -> None:
    check_tasks(lmeval_spec(req.opts), base_dir, where=req.opts["key"])


def _lmeval_identity(req: MeasureRequest, base_dir: Path | None) -> Any:
    """The local task files and the data files they name (a changed YAML or document re-measures), and lm-eval's
    version (its prompts and metrics are part of the result)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        lm_eval = version("lm_eval")
    except PackageNotFoundError:
        lm_eval = None
    files = task_files(lmeval_spec(req.opts), base_dir)
    return {"lm_eval": lm_eval, "files": sorted(sha256_file(f) for f in files)}


def _training_log(call: MeasureCall) -> TrainingLog:
    data = call.request.data
    return read_training_log(Path(data) if data else call.env.adapter.dir)


# -- comparisons of two variants ---------------------------------------------------------------------------


def _judge(call: MeasureCall) -> Any:
    env = call.env
    return run_judge(
        call.options["spec"], call.data, call.inputs["base"], call.inputs["candidate"], env.cache, env.base_dir
    )


def _judge_preflight(req: MeasureRequest, base_dir: Path | None) -> None:
    preflight(req.opts["spec"], base_dir)


def _judge_identity(req: MeasureRequest, base_dir: Path | None) -> Any:
    return get_backend(req.opts["spec"], base_dir).identity()


def _load_judge_run(d: dict[str, Any]) -> Any:
    return JudgeRun.from_dict(d)


# -- about the data ----------------------------------------------------------------------------------------


def _contamination(call: MeasureCall) -> Any:
    o, base_dir = call.options, call.env.base_dir
    evals = [read_text_set(s, base_dir, key="[gates.contamination] data") for s in o["evals"]]
    train = [read_text_set(s, base_dir, key="[gates.contamination] train") for s in o["train"]]
    return contamination(evals, train, n=o["n"], fuzzy_cutoff=o["fuzzy_cutoff"])


def _contamination_preflight(req: MeasureRequest, base_dir: Path | None) -> None:
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


def _audit(call: MeasureCall) -> list[dict[str, Any]]:
    """The dataset audit of each training set, for the report (a failed audit is noted, never fatal)."""
    import logging

    env, out = call.env, []
    for spec in call.options["train"]:
        try:
            a = audit(
                spec,
                env.base_dir,
                tokenizer=env.base.id,
                tok_dir=tokenizer_dir(env.base, env.adapter),
                max_length=env.max_length,
            )
            out.append(a.to_dict())
        except Exception as e:  # the audit informs; it does not decide
            logging.getLogger(__name__).debug("audit failed", exc_info=True)
            out.append({"name": spec, "error": f"{type(e).__name__}: {e}"})
    return out


# -- what ships ----------------------------------------------------------------------------------------------


def _ship(name: str) -> Callable[[MeasureCall], Any]:
    def run(call: MeasureCall) -> Any:
        return getattr(shipping, name)(call)

    return run


def _serving(call: MeasureCall) -> Any:
    return measure_serving(call)


_SHIP_CODE = ("harness.release.export", "harness.release.shipping", "probes.parity", "harness.core.runtime.hf")
_prompts = partial(load_suite, check_optional=True)


def _gguf_kept(v: dict[str, Any]) -> bool:
    """A llama.cpp run that crashed says something about this machine, not the export: measure it again."""
    return not any("error" in t.get("llama_cpp", {}) for t in v["types"].values())


KINDS: dict[str, MeasureKind] = {
    "probes": MeasureKind(
        run=_probes,
        load=ProbeRun.from_dict,
        dump=_dump,
        runtime_options=frozenset({"batch_size"}),
        load_data=load_suite,
        code=("harness.core.runtime.hf", "probes.checkers", "probes.safety", "probes.sandbox"),
    ),
    "answers": MeasureKind(  # like probes, but items need no check: the answers are for a judge
        run=_probes,
        load=ProbeRun.from_dict,
        dump=_dump,
        runtime_options=frozenset({"batch_size"}),
        load_data=_prompts,
        code=("harness.core.runtime.hf", "probes.checkers"),
    ),
    "nll": MeasureKind(
        run=_nll,
        load=NLLMeasurement.from_dict,
        dump=_dump,
        runtime_options=frozenset({"batch_size"}),
        code=("probes.perplexity", "harness.core.runtime.hf"),
        shared_tokens=True,
    ),
    "choices": MeasureKind(  # closed-answer items: each option's log-likelihood (the calibration gate)
        run=_choices,
        load=ChoiceRun.from_dict,
        dump=_dump,
        runtime_options=frozenset({"batch_size", "key"}),
        code=("probes.choices", "harness.core.runtime.hf"),
        shared_tokens=True,
    ),
    "lmeval": MeasureKind(  # lm-evaluation-harness tasks, every model call through the variant's runtime
        run=_lmeval,
        load=TaskSuiteRun.from_dict,
        dump=_dump,
        load_data=None,
        runtime_options=frozenset({"batch_size", "key"}),
        preflight=_lmeval_preflight,
        identity=_lmeval_identity,
        code=("probes.lmeval", "harness.core.runtime.hf"),
    ),
    "judge": MeasureKind(  # base vs candidate answers (the `source` request), judged pairwise
        run=_judge,
        load=_load_judge_run,
        dump=_dump,
        load_data=_prompts,
        preflight=_judge_preflight,
        identity=_judge_identity,
        code=("judges.protocol", "judges.backends", "judges.run"),
    ),
    "training_log": MeasureKind(
        run=_training_log, load=TrainingLog.from_dict, dump=_dump, load_data=None, cached=False
    ),
    "contamination": MeasureKind(  # about the data, not a model: cheap, never cached
        run=_contamination,
        load=_same,
        dump=_dump,
        load_data=None,
        cached=False,
        preflight=_contamination_preflight,
    ),
    "audit": MeasureKind(
        run=_audit, load=_same, dump=_same, load_data=None, cached=False, manifest_key="dataset_audit"
    ),
    **{
        kind: MeasureKind(run=fn, load=_same, dump=_same, load_data=_prompts, code=_SHIP_CODE, **how)
        for kind, fn, how in (
            ("merge_parity", _ship("measure_merge"), {}),
            ("gguf_parity", _ship("measure_gguf"), {"keep": _gguf_kept}),
            ("template_drift", _ship("measure_template"), {}),
            ("rollback", _ship("measure_rollback"), {"cached": False}),  # the bundle on disk is what is checked
            ("serving", _serving, {"cached": False}),  # this machine's latency, now
        )
    },
}
