"""lm-evaluation-harness tasks on a harness runtime: lm-eval's own task definitions, prompts, few-shot sampling,
filters and metrics, with every model call answered by the variant's `Runtime` (hf, vllm or openai).

`RuntimeLM` is an lm-eval model class (a `TemplateLM`): lm-eval builds the requests and scores the answers;
the runtime only computes log-likelihoods and generations. It encodes text as lm-eval's own `hf` model does
(context and continuation encoded together, then split; the tokenizer's own special tokens; an empty context
conditioned on BOS), so on the same model its accuracies are lm-eval's (`tests/test_lmeval.py`).

lm-eval is an optional extra (`pip install 'release-gate-harness[lmeval]'`); nothing here imports it at module
level. Relative `data_files` in a task YAML are read from the release config's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.hashing import sha256_file
from harness.core.kinds import MeasureCall, MeasureRequest, kind, to_dict
from harness.core.runtime import GenParams, LoglikRequest
from probes.results import TaskItem, TaskRun, TaskSuiteRun

INSTALL = "pip install 'release-gate-harness[lmeval]' (or pip install lm-eval)"
# per-document metrics a gate can decide on, in the order they are preferred when a task names several
PREFERRED_METRICS = ("acc", "exact_match", "acc_norm", "pass@1", "pass_at_1")
SUPPORTED_OUTPUT_TYPES = ("multiple_choice", "generate_until", "loglikelihood_rolling")


def require_lmeval(where: str = "[gates.regression] tasks") -> Any:
    """The `lm_eval` module, or a bad-input error that gives the install command."""
    try:
        import lm_eval
    except ImportError:
        raise HarnessError(
            "lm-eval tasks need lm-evaluation-harness, which is not installed in this Python environment",
            where=where,
            fix=f"{INSTALL}; or remove `{where.split()[-1]}` from the config",
        ) from None
    return lm_eval


@dataclass(frozen=True)
class TaskSpec:
    """Which tasks to run and how: a task is `name` or `name:metric` (the per-document metric to decide on)."""

    tasks: tuple[str, ...]
    task_paths: tuple[str, ...] = ()
    limit: int = 0  # documents per task (0: all)
    num_fewshot: int = -1  # -1: the task's own default
    seed: int = 0  # lm-eval's few-shot sampler seed (the same for base and candidate)

    @property
    def names(self) -> list[str]:
        return [t.split(":", 1)[0] for t in self.tasks]

    def metric(self, name: str) -> str | None:
        for t in self.tasks:
            if t.split(":", 1)[0] == name and ":" in t:
                return t.split(":", 1)[1]
        return None


@contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    """lm-eval reads a task's relative `data_files` from the working directory: make that the config's folder."""
    old = os.getcwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def task_manager(spec: TaskSpec, where: str = "[gates.regression] tasks") -> Any:
    """lm-eval's task index over `task_paths`; lm-eval's own catalogue (~16 s to index) only when a task is not
    found among the local ones."""
    require_lmeval(where)
    paths = tuple(str(Path(p)) for p in spec.task_paths)
    for p in paths:
        if not Path(p).exists():
            raise HarnessError(
                "task path not found", where=f"{where.rsplit(' ', 1)[0]} task_paths: {p}", fix="check the path"
            )
    tm = _index(tuple(spec.names), paths)
    unknown = [n for n in spec.names if n not in tm.all_tasks]
    if unknown:
        import difflib

        close = {n: difflib.get_close_matches(n, tm.all_tasks, n=1) for n in unknown}
        hints = "; ".join(f"{n!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for n, c in close.items())
        raise HarnessError(
            f"unknown lm-eval task {hints}",
            where=where,
            fix="name a task of `lm-eval ls tasks`, or add the folder of your task YAML to task_paths",
        )
    return tm


@lru_cache(maxsize=4)
def _index(names: tuple[str, ...], paths: tuple[str, ...]) -> Any:
    """The task index, built once per process for the same tasks and folders (the preflight and each variant's run
    ask for it; lm-eval's own catalogue takes ~16 s to index)."""
    from lm_eval.tasks import TaskManager

    include = list(paths) or None
    tm = TaskManager(include_path=include, include_defaults=False) if paths else None
    if tm is None or any(n not in tm.all_tasks for n in names):
        tm = TaskManager(include_path=include)
    return tm


def _leaves(task_dict: dict) -> Iterator[tuple[str, Any]]:
    for key, value in task_dict.items():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield getattr(key, "group_name", None) or str(key), value


def check_tasks(spec: TaskSpec, base_dir: Path | None, where: str = "[gates.regression] tasks") -> dict[str, str]:
    """Load every task (before any model does) and refuse the kinds a release gate cannot decide on.
    Returns task name -> output type."""
    tm = task_manager(spec, where)
    import warnings

    from lm_eval.tasks import get_task_dict

    with _cwd(base_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            task_dict = get_task_dict(spec.names, tm)
        except Exception as e:
            raise HarnessError(
                f"lm-eval could not load the tasks: {type(e).__name__}: {e}",
                where=where,
                fix="check the task YAML and its data_files (relative paths are read from the config's folder)",
            ) from None
    out = {}
    for name, task in _leaves(task_dict):
        otype = getattr(task, "OUTPUT_TYPE", None)
        if otype not in SUPPORTED_OUTPUT_TYPES:
            raise HarnessError(
                f"task {name!r} has output_type {otype!r}, which the release gate cannot decide on",
                where=where,
                fix="use multiple_choice or generate_until tasks (a loglikelihood task's accuracy needs "
                "is_greedy, which the served engines do not report)",
            )
        out[getattr(task, "task_name", name)] = otype
    return out


@cache
def _make_runtime_lm() -> type:
    from lm_eval.api.model import TemplateLM
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    class RuntimeLM(TemplateLM):
        """lm-eval's model contract answered by a harness runtime (see the module doc)."""

        def __init__(self, runtime: Any, *, batch_size: int = 8, max_length: int | None = None, label: str = ""):
            super().__init__()
            self.rt = runtime
            self.tokenizer = runtime.tok
            self.batch_size = batch_size
            self.label = label
            self._max_length = max_length or runtime.context_length() or 2048

        @property
        def eot_token_id(self) -> int:
            return self.tokenizer.eos_token_id

        @property
        def prefix_token_id(self) -> int:  # as lm-eval's hf model: BOS, else EOS
            bos = self.tokenizer.bos_token_id
            return bos if bos is not None else self.tokenizer.eos_token_id

        @property
        def max_length(self) -> int:
            return self._max_length

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
            kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
            bos = self.tokenizer.bos_token
            if add_special_tokens is None and bos and string.startswith(bos):
                kw = {"add_special_tokens": False}
            return self.tokenizer.encode(string, **kw)

        def _score(self, pairs: Sequence[tuple[list[int], list[int]]], what: str) -> list[float]:
            reqs = []
            for ctx, cont in pairs:
                full = (ctx + cont)[-self.max_length :]
                n = len(full) - 1
                reqs.append(LoglikRequest(full, [False] * (n - len(cont)) + [True] * len(cont)))
            order = sorted(range(len(reqs)), key=lambda i: -len(reqs[i].ids))  # similar lengths together
            got = self.rt.loglik([reqs[i] for i in order], batch_size=self.batch_size, description=what)
            out = [0.0] * len(reqs)
            for i, ll in zip(order, got, strict=True):
                out[i] = ll
            return out

        def loglikelihood(self, requests: Any, disable_tqdm: bool = False) -> list:
            return super().loglikelihood(requests, disable_tqdm=True)  # the runtime shows the progress

        def _loglikelihood_tokens(self, requests: Any, disable_tqdm: bool = False, **kwargs: Any) -> list:
            # is_greedy is not computed: only output_type loglikelihood reads it, and check_tasks refuses those
            lls = self._score([(c, k) for _, c, k in requests], f"lm-eval log-likelihoods ({self.label})")
            return [(ll, False) for ll in lls]

        def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> list[float]:
            windows, owner = [], []
            for i, req in enumerate(requests):
                (string,) = req.args
                for w in get_rolling_token_windows(
                    token_list=self.tok_encode(string),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length - 1,
                    context_len=1,
                ):
                    windows.append(make_disjoint_window(w))
                    owner.append(i)
            lls = self._score(windows, f"lm-eval rolling log-likelihoods ({self.label})")
            out = [0.0] * len(requests)
            for i, ll in zip(owner, lls, strict=True):
                out[i] += ll
            return out

        def generate_until(self, requests: Any, disable_tqdm: bool = False) -> list[str]:
            groups: dict[str, list[int]] = {}
            for i, req in enumerate(requests):
                groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(i)
            out = [""] * len(requests)
            for key, idx in groups.items():
                kw = json.loads(key)
                until = kw.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                max_new = int(kw.get("max_gen_toks", 256))
                temperature = float(kw.get("temperature", 0.0)) if kw.get("do_sample") else 0.0
                params = GenParams(
                    temperature=temperature,
                    top_p=float(kw.get("top_p", 1.0)) if temperature > 0 else 1.0,
                    max_new_tokens=max_new,
                    stop=tuple(u for u in until if u),
                    eos="config",
                )
                keep = max(self.max_length - max_new, 1)
                prompts = [self.tok_encode(requests[i].args[0])[-keep:] for i in idx]
                got = self.rt.generate(
                    prompts, params, batch_size=self.batch_size, description=f"lm-eval generations ({self.label})"
                )
                for i, comps in zip(idx, got, strict=True):
                    out[i] = comps[0].text
            return out

    return RuntimeLM


def runtime_lm(runtime: Any, *, batch_size: int = 8, label: str = "") -> Any:
    """An lm-eval model (`lm_eval.api.model.LM`) whose every call goes to `runtime`."""
    require_lmeval()
    return _make_runtime_lm()(runtime, batch_size=batch_size, label=label)


def _pick_metric(name: str, sample: dict, wanted: str | None, where: str) -> str:
    names = [m for m in sample.get("metrics", []) if m in sample]
    if wanted:
        if wanted not in names:
            raise HarnessError(
                f"task {name!r} has no per-document metric {wanted!r}",
                where=where,
                fix=f"use one of: {', '.join(names)}",
            )
        return wanted
    for m in PREFERRED_METRICS:
        if m in names:
            return m
    if names:
        return names[0]
    raise HarnessError(f"task {name!r} logs no per-document metric", where=where)


def _score_of(value: Any, name: str, metric: str, where: str) -> float:
    v = value[0] if isinstance(value, (list, tuple)) else value
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise HarnessError(
            f"task {name!r}: metric {metric!r} is {v} for a document; a release gate decides on per-document "
            "scores in [0, 1] (accuracy, exact match)",
            where=where,
            fix=f"name another metric as '{name}:METRIC'",
        )
    return v


def _response(sample: dict, output_type: str) -> str:
    resps = sample.get("filtered_resps", sample.get("resps", []))
    if output_type == "multiple_choice":
        lls = [r[0] if isinstance(r, (list, tuple)) else r for r in resps]
        conts = [a[1] for a in sample.get("arguments", [])]
        if lls and conts:
            best = max(range(len(lls)), key=lambda j: float(lls[j]))
            return str(conts[best]).strip()
        return ""
    first = resps[0] if resps else ""
    return str(first[0] if isinstance(first, (list, tuple)) and first else first)


def _target(sample: dict, output_type: str) -> str:
    """The right answer as text: a multiple-choice target is the index of its option."""
    t = sample.get("target", "")
    t = int(t) if isinstance(t, str) and t.isdigit() else t
    conts = [a[1] for a in sample.get("arguments", [])]
    if output_type == "multiple_choice" and isinstance(t, int) and 0 <= t < len(conts):
        return str(conts[t]).strip()
    return str(t)


def _choice_logliks(sample: dict, output_type: str) -> tuple[tuple[float, ...], int]:
    """A multiple-choice document's log-likelihood of each option and the right option's index (else (), -1)."""
    if output_type != "multiple_choice":
        return (), -1
    resps = sample.get("resps", [])
    lls = tuple(round(float(r[0][0] if isinstance(r[0], (list, tuple)) else r[0]), 6) for r in resps if r)
    t = sample.get("target", "")
    t = int(t) if isinstance(t, str) and t.isdigit() else t
    gold = t if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(lls) else -1
    return lls, gold


def _context(sample: dict) -> str:
    args = sample.get("arguments") or []
    ctx = args[0][0] if args and isinstance(args[0], (list, tuple)) else ""
    return str(ctx)[-400:]


def run_tasks(
    runtime: Any,
    spec: TaskSpec,
    base_dir: Path | None = None,
    *,
    batch_size: int = 8,
    label: str = "",
    where: str = "[gates.regression] tasks",
) -> TaskSuiteRun:
    """Run the tasks through lm-eval's evaluator with `runtime` answering; per-document scores for each task."""
    lm_eval = require_lmeval(where)
    import logging

    tm = task_manager(spec, where)
    lm = runtime_lm(runtime, batch_size=batch_size, label=label)
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import lm_eval.evaluator as ev

    quiet = {"get_git_commit_hash": lambda: None, "add_env_info": lambda results: None}  # the manifest has these
    saved = {k: getattr(ev, k) for k in quiet if hasattr(ev, k)}
    with _cwd(base_dir):
        for k in saved:
            setattr(ev, k, quiet[k])
        try:
            res = _evaluate(lm_eval, lm, spec, tm)
        finally:
            for k, v in saved.items():
                setattr(ev, k, v)
    return _collect(res, spec, where)


def _evaluate(lm_eval: Any, lm: Any, spec: TaskSpec, tm: Any) -> dict:
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=spec.names,
        num_fewshot=spec.num_fewshot if spec.num_fewshot >= 0 else None,
        limit=spec.limit or None,
        log_samples=True,
        bootstrap_iters=0,
        task_manager=tm,
        random_seed=spec.seed,
        numpy_random_seed=spec.seed,
        torch_random_seed=spec.seed,
        fewshot_random_seed=spec.seed,
    )


def _collect(res: dict, spec: TaskSpec, where: str) -> TaskSuiteRun:
    tasks = []
    for name, samples in sorted(res["samples"].items()):
        if not samples:
            continue
        cfg = res.get("configs", {}).get(name, {})
        otype = cfg.get("output_type", "")
        wanted = spec.metric(name)
        filters = list(dict.fromkeys(s.get("filter", "none") for s in samples))
        flt = "none" if "none" in filters else filters[0]
        rows = sorted((s for s in samples if s.get("filter", "none") == flt), key=lambda s: s["doc_id"])
        metric = _pick_metric(name, rows[0], wanted, where)
        items = tuple(
            TaskItem(
                doc_id=int(s["doc_id"]),
                prompt=_context(s),
                target=_target(s, otype),
                response=_response(s, otype),
                score=_score_of(s[metric], name, metric, where),
                logliks=(mc := _choice_logliks(s, otype))[0],
                gold=mc[1],
            )
            for s in rows
        )
        agg = res["results"].get(name, {}).get(f"{metric},{flt}")
        tasks.append(
            TaskRun(
                name=name,
                metric=metric,
                output_type=otype,
                num_fewshot=int(res.get("n-shot", {}).get(name, cfg.get("num_fewshot") or 0) or 0),
                version=str(res.get("versions", {}).get(name, "")),
                lm_eval_score=float(agg) if isinstance(agg, (int, float)) else float("nan"),
                items=items,
            )
        )
    return TaskSuiteRun(tuple(tasks), _version())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


def task_files(spec: TaskSpec, base_dir: Path | None) -> list[Path]:
    """Every file the local tasks read, for the cache key: the task folders' files and the data files their YAMLs
    name (relative to the config's folder, as lm-eval reads them here)."""
    files: list[Path] = []
    for p in spec.task_paths:
        root = Path(p)
        files += sorted(f for f in (root.rglob("*") if root.is_dir() else [root]) if f.is_file())
    for y in [f for f in files if f.suffix in (".yaml", ".yml")]:
        for line in y.read_text(encoding="utf-8", errors="replace").splitlines():
            value = line.split(":", 1)[-1].strip().strip("'\"")
            if not value or line.strip().startswith("#"):
                continue
            for cand in ((base_dir / value) if base_dir else Path(value), y.parent / value):
                if cand.suffix in (".json", ".jsonl", ".csv", ".parquet", ".txt", ".gz") and cand.is_file():
                    files.append(cand.resolve())
    return list(dict.fromkeys(files))


# -- the `lmeval` measurement kind ---------------------------------------------------------------------------


def lmeval_spec(options: Mapping[str, Any]) -> TaskSpec:
    """The `TaskSpec` of an `lmeval` request's options."""

    o = options
    return TaskSpec(tuple(o["tasks"]), tuple(o["task_paths"]), o["limit"], o["num_fewshot"], o["seed"])


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


@kind(  # lm-evaluation-harness tasks, every model call through the variant's runtime
    "lmeval",
    load=TaskSuiteRun.from_dict,
    dump=to_dict,
    load_data=None,
    runtime_options=frozenset({"batch_size", "key"}),
    preflight=_lmeval_preflight,
    identity=_lmeval_identity,
    code=("probes.lmeval", "harness.core.runtime.hf"),
)
def _lmeval_kind(call: MeasureCall) -> TaskSuiteRun:
    spec, o = lmeval_spec(call.options), call.options
    return run_tasks(
        call.runtime(), spec, call.env.base_dir, batch_size=o["batch_size"], label=call.variant, where=o["key"]
    )
