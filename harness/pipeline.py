"""The one pipeline: config -> plan -> measure -> decide -> record -> report.

The CLI, `harness.run()` and the pytest plugin all call `run()`. Measuring loads models lazily:
when every measurement is in the cache, no model (and not even torch) is loaded.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape

from fine_tune.licenses import refuse_disallowed
from gates import GateContext, GateResult, MeasureRequest, get_gate, release_verdict
from gates.registry import PlanInfo, not_applicable
from gates.stats import Power
from harness import workers
from harness.config import ReleaseConfig, load_config
from harness.core.cache import MeasurementCache, measurement_key
from harness.core.console import console, status
from harness.core.errors import HarnessError
from harness.core.forms import Form, check_pair, resolve_form
from harness.core.manifest import build_manifest
from harness.core.models import (
    AdapterInfo,
    BaseModel,
    Fingerprint,
    fingerprint,
    read_chat_template,
    resolve_base,
    tokenizer_dir,
)
from harness.core.paths import cache_root
from harness.core.registry import resolve as resolve_registry
from harness.core.runtime import Setup, get_backend
from harness.core.runtime.load import Runtimes
from harness.core.tracking import Logged, log_report
from harness.core.tracking import require as require_tracker
from harness.core.training_manifest import find_manifest
from harness.measure import KINDS, MeasureCall, MeasureEnv
from harness.release.artifacts import locator
from reports import write_reports
from reports.item_rows import item_rows
from reports.items import PARQUET as ITEMS_FILE
from reports.items import SCHEMA_VERSION as ITEMS_SCHEMA
from reports.items import ItemRow
from reports.types import Report

log = logging.getLogger(__name__)
VARIANTS = ("base", "candidate")


@dataclass(frozen=True)
class RunResult:
    report: Report
    out_dir: Path | None
    files: dict[str, Path]
    cache_hits: int
    cache_misses: int
    tracked: Logged | None = None  # where `log_to` wrote the verdict and the gate metrics

    @property
    def passed(self) -> bool:
        return self.report.verdict == "pass"


def prepare_out_dir(out: Path, overwrite: bool) -> Path:
    """Check `out` before anything runs: refuse to replace an existing report unless asked (nothing of the user's
    is lost), and refuse a place that cannot be written. Nothing is created yet (`make_out_dir`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HarnessError(
            "output path exists and is not a directory", where=str(out), fix="choose a new --out directory"
        )
    if (out / "report.json").exists() and not overwrite:
        raise HarnessError(
            "a report already exists here and would be overwritten",
            where=str(out),
            fix="choose a new --out directory, or pass --overwrite to replace it",
        )
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise HarnessError(
            "the output directory is not empty; runs write to a new directory so nothing there is lost",
            where=str(out),
            fix="choose a new (or empty) --out directory, or pass --overwrite to write the report files into it",
        )
    writable_dir(out, "--out")
    return out


def writable_dir(path: Path, what: str) -> None:
    """Refuse up front a directory that cannot be written, or made: the nearest folder that exists on the way to
    `path` must be a writable directory."""
    near = Path(path).absolute()
    while not near.exists() and near != near.parent:
        near = near.parent
    if not near.is_dir():
        raise HarnessError(
            f"{near} is a file, so no directory can be made under it",
            where=f"{what} {path}",
            fix=f"choose a {what} path whose folders are directories",
        )
    try:  # a folder made and removed at once: permissions, read-only file systems and root alike
        if not os.access(near, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        os.rmdir(tempfile.mkdtemp(prefix=".harness-write-check-", dir=near))
    except OSError as e:
        raise HarnessError(
            f"{near} cannot be written ({e.strerror or e})",
            where=f"{what} {path}",
            fix=f"choose a {what} path you can write to (or change that folder's permissions)",
        ) from None


def make_out_dir(out: Path) -> list[Path]:
    """Create `out` and its missing parents; return the folders made, outermost first (to undo on failure)."""
    made, p = [], Path(out).absolute()
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HarnessError(
            f"cannot create the output directory: {e.strerror or e}",
            where=str(out),
            fix="choose a --out directory you can write to",
        ) from None
    return made[::-1]


def remove_made(made: list[Path]) -> None:
    """Remove the folders `make_out_dir` made, innermost first, where they are still empty (a run that failed
    before writing its report leaves nothing behind; a folder the user made is never touched)."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            return


def _slice(ds: Any, bounds: tuple[int, int]) -> Any:
    """The items [start, stop) of a data set or probe suite."""
    start, stop = bounds
    if hasattr(ds, "records"):
        return replace(ds, records=ds.records[start:stop])
    return replace(ds, items=ds.items[start:stop])


def _with_engine(key: str, engine: Any) -> Any:
    """A variant's fingerprint, and the server that answers it when served (the in-process key is unchanged)."""
    return key if engine is None else {"fingerprint": key, **engine}


class _Busy(Exception):
    """Another run sharing the cache is measuring this key now."""


FAILED = "__measurement_failed__"  # the record of a measurement that raised (its error text)


class RecordedFailure(Exception):
    """A measurement that failed in the run being replayed, as that run recorded it."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def error_text(e: BaseException) -> str:
    """How a failed measurement reads in its gate's explanation (a replayed failure reads as it did)."""
    return e.text if isinstance(e, RecordedFailure) else f"{type(e).__name__}: {e}"


class Measurer:
    """Makes the measurements a plan needs, each through `KINDS[kind].run(MeasureCall)` and the one cache; the
    release's variants are runtimes opened on the first cache miss that needs them."""

    def __init__(self, pl: Plan, cache: MeasurementCache, run_id: str | None = None):
        cfg, spec = pl.cfg, pl.cfg.model
        self.cfg, self.plan, self.cache = cfg, pl, cache
        # what this run measured that no content key holds (uncached kinds, kept-out results, failures) is also
        # recorded under the run's id, so `harness promote` can replay the run's decisions from the cache
        self.run_id = run_id
        self.runtimes = Runtimes(
            pl.base,
            pl.adapter,
            reference=pl.reference,
            candidate=pl.candidate,
            device=spec.device,
            dtype=spec.dtype,
            trust_remote_code=spec.trust_remote_code,
            locate=locator(pl.candidate.base, pl.adapter),
            status=status,
            fingerprints=pl.fps,
            backend=spec.backend,
            state=pl.backend_state,
        )
        self.env = MeasureEnv(
            pl.candidate.base, pl.adapter, self.runtimes, cache, cfg.base_dir, max_length=_training_max_length(cfg)
        )
        self.quiet: Any = lambda: None  # called before timed kinds are measured: stops the run's helper processes
        # what each measurement this process made took (seconds), in order: where a run's time went
        self.timings: list[dict[str, Any]] = []
        self.on_measured: Any = lambda record: None  # a helper process logs each one

    @property
    def device(self) -> str | None:
        return self.runtimes.device

    def _model_key(self, variant: str) -> Any:
        fps, rts = self.plan.fps, self.runtimes
        if variant == "pair":
            return {v: _with_engine(fps[v].key, rts.engine_key(v)) for v in VARIANTS}
        if variant == "data":
            return fps["candidate"].key  # what ships is made from the candidate, in-process
        return _with_engine(fps[variant].key, rts.engine_key(variant))

    def _data(self, req: MeasureRequest) -> Any:
        return self.plan.datasets.get((req.kind, req.data))

    def _key(self, req: MeasureRequest, variant: str, run: str | None = None) -> str:
        kind = KINDS[req.kind]
        keyed = {k: v for k, v in req.options if k not in kind.runtime_options}
        if run is not None:  # this run's own record of the measurement
            keyed["run"] = run
        if kind.identity is not None:
            keyed["identity"] = kind.identity(req, self.cfg.base_dir)
        ds = self._data(req)
        data = ds.sha256 if ds is not None else ""
        return measurement_key(
            req.kind, model=self._model_key(variant), data=data, options=keyed, code=kind.code_sha256()
        )

    def _one(self, req: MeasureRequest, variant: str, results: dict, *, wait: bool = True) -> Any:
        """One measurement, from the cache when it holds it. Another run measuring the same key right now (a
        shared cache) raises `_Busy` without `wait`, else this waits for its value."""
        kind = KINDS[req.kind]
        key = self._key(req, variant) if kind.cached else None
        if key is None:
            return self._measure(req, variant, results, None)
        hit = self.cache.peek(key)
        if hit is None:
            with self.cache.claim(key, wait=wait) as mine:
                if not mine:
                    raise _Busy(key)
                hit = self.cache.get(key)  # the run that held the key may have put it
                if hit is None:
                    return self._measure(req, variant, results, key)
        else:
            self.cache.hits += 1
        return kind.load(hit)

    def _measure(self, req: MeasureRequest, variant: str, results: dict, key: str | None) -> Any:
        kind = KINDS[req.kind]
        opts, ds = req.opts, self._data(req)
        if "items" in opts:  # a sequential look measures a slice of the items
            ds = _slice(ds, opts.pop("items"))
        inputs = {}
        if variant == "pair":
            src = opts["source"]
            inputs = {v: results[(src, v)] for v in VARIANTS}
        where = f" on {ds.name}" if ds is not None else ""
        call = MeasureCall(req, variant, self.env, ds, opts, inputs, description=f"{req.kind} {variant}{where}")
        t0 = time.perf_counter()
        value = kind.run(call)
        record = {
            "kind": req.kind,
            "variant": variant,
            "data": ds.name if ds is not None else req.data,
            "items": len(ds) if ds is not None and hasattr(ds, "__len__") else None,
            "s": round(time.perf_counter() - t0, 2),
        }
        self.timings.append(record)
        self.on_measured(record)
        if key and kind.keep(value):
            self.cache.put(key, kind.dump(value))
        else:
            self._record(req, variant, kind.dump(value))
        return value

    def _record(self, req: MeasureRequest, variant: str, value: Any) -> None:
        """Keep what this run measured (or how it failed) under its run id; a record that cannot be written only
        means the run cannot be replayed (promotion then refuses), never a failed measurement."""
        if self.run_id is None:
            return
        try:  # the key itself may fail as the measurement did (a judge whose identity cannot be read)
            self.cache.put(self._key(req, variant, run=self.run_id), value)
        except Exception as e:
            log.warning("could not record %s of the %s for replay: %s", req.kind, variant, e)

    def cached(self, requests: list[MeasureRequest]) -> dict[tuple[MeasureRequest, str], Any]:
        """The base/candidate measurements the cache already holds (no model is loaded, nothing is counted)."""
        out = {}
        for req in requests:
            kind = KINDS[req.kind]
            for variant in VARIANTS:
                if variant in req.variants and kind.cached:
                    hit = self.cache.peek(self._key(req, variant))
                    if hit is not None:
                        out[(req, variant)] = kind.load(hit)
        return out

    def measure(
        self, requests: list[MeasureRequest], done: dict | None = None, *, variants_only: bool = False
    ) -> tuple[dict[tuple[MeasureRequest, str], Any], dict[tuple[MeasureRequest, str], BaseException]]:
        """Data measurements first (before any model loads), then each variant's (base first: the candidate
        wraps the same loaded model), then comparisons of two variants once both exist. `done` holds what
        earlier looks measured. A measurement another run sharing the cache is making right now is put off
        until the rest is measured, then awaited (so it is made once). `variants_only` (a helper process of a
        run, `harness.workers`): only the variants' cached measurements, which have no side effects."""
        results: dict[tuple[MeasureRequest, str], Any] = {}
        errors: dict[tuple[MeasureRequest, str], BaseException] = {}
        seen = dict(done or {})  # earlier looks' measurements and this call's, for the pairs' sources

        def attempt(req: MeasureRequest, variant: str, wait: bool) -> bool:
            try:
                results[(req, variant)] = seen[(req, variant)] = self._one(req, variant, seen, wait=wait)
            except _Busy:
                return False
            except HarnessError:
                raise  # bad input: exit 2 with the place and the fix
            except Exception as e:  # a crashed measurement becomes an `error` verdict, never a pass
                log.debug("measurement failed", exc_info=True)
                errors[(req, variant)] = e
                self._record(req, variant, {FAILED: error_text(e)})
            return True

        work = [(req, v) for v in ("data", *VARIANTS) for req in requests if v in req.variants]
        if variants_only:
            work = [(req, v) for req, v in work if v in VARIANTS and KINDS[req.kind].cached]
        later = [(req, v) for req, v in work if not attempt(req, v, wait=False)]
        for req, variant in later:
            attempt(req, variant, wait=True)
        if variants_only:
            return results, errors
        for req in requests:
            if "pair" not in req.variants:
                continue
            if any((req.opts["source"], v) not in seen for v in VARIANTS):
                continue  # the gate reports the failed source measurement
            attempt(req, "pair", wait=True)
        return results, errors

    def close(self) -> None:
        self.runtimes.close()


def _ctx(
    cfg: ReleaseConfig, g: Any, plan: dict, measurements: dict, looks: dict, sizes: dict, reference: str = "base"
) -> GateContext:
    lk = looks.get(g.name)
    return GateContext(
        name=g.name,
        required=g.required,
        seed=cfg.run.seed,
        reference=reference,
        measurements=measurements,
        requests=tuple(plan[g.name]),
        looks=lk[0] if lk else (),
        look=lk[1] if lk else 0,
        sizes=sizes,
    )


def _decide(
    cfg: ReleaseConfig,
    plan: dict[str, list[MeasureRequest]],
    results: dict,
    errors: dict,
    looks: dict | None = None,
    sizes: dict | None = None,
    reference: str = "base",
) -> list[GateResult]:
    looks, sizes = looks or {}, sizes or {}
    out = []
    for g in cfg.gates:
        gdef = get_gate(g.name)
        failed = [(r, v) for r in plan[g.name] for v in r.variants if (r, v) in errors]
        if failed:
            r, v = failed[0]
            e = errors[(r, v)]
            out.append(
                GateResult.errored(
                    g.name,
                    f"measuring {r.kind} of the {v} on {r.data} failed: {error_text(e)}"
                    if v != "pair"
                    else f"{r.kind} on {r.data} failed: {error_text(e)}",
                    required=g.required,
                )
            )
            continue
        ctx = _ctx(cfg, g, plan, results, looks, sizes, reference)
        try:
            out.append(gdef.decide(g.params, ctx))
        except Exception as e:
            log.debug("gate %s raised:\n%s", g.name, traceback.format_exc())
            out.append(GateResult.errored(g.name, e, required=g.required))
    return _without_contaminated(cfg, plan, results, out, looks, sizes, reference)


def _without_contaminated(
    cfg: ReleaseConfig,
    plan: dict[str, list[MeasureRequest]],
    results: dict,
    decided: list[GateResult],
    looks: dict,
    sizes: dict,
    reference: str = "base",
) -> list[GateResult]:
    """Each gate that measured on items another gate excluded (contaminated ones) is decided again without them;
    both numbers are shown."""
    dirty: dict[str, set[str]] = {}
    excluders = set()
    for g in decided:
        if g.verdict in ("pass", "fail") and g.excluded_items:
            excluders.add(g.name)
            for spec, ids in g.excluded_items.items():
                dirty.setdefault(spec, set()).update(ids)
    if not dirty:
        return decided
    by_name = {g.name: g for g in cfg.gates}
    out = []
    for g in decided:
        hit = {r.data for r in plan.get(g.name, []) if r.data in dirty}
        if g.name in excluders or g.verdict == "error" or not hit:
            out.append(g)
            continue
        clean = {
            key: value.without(dirty[key[0].data]) if key[0].data in dirty and hasattr(value, "without") else value
            for key, value in results.items()
        }
        removed = sum(len(dirty[d]) for d in hit)
        gc = by_name[g.name]
        ctx = _ctx(cfg, gc, plan, clean, looks, sizes, reference)
        try:
            again = get_gate(g.name).decide(gc.params, ctx)
            summary = {
                "removed_items": removed,
                "verdict": again.verdict,
                "baseline": again.baseline,
                "candidate": again.candidate,
                "delta": again.delta,
                "ci": list(again.ci) if again.ci else None,
            }
            ci = f", CI {again.ci[0]:.4g} to {again.ci[1]:.4g}" if again.ci else ""
            note = (
                f" Without the {removed} contaminated item(s): delta {again.delta:.4g}{ci} -> {again.verdict} "
                "(the verdict above counts them)."
                if again.delta is not None
                else f" Without the {removed} contaminated item(s): {again.verdict}."
            )
        except Exception as e:  # e.g. nothing left once the contaminated items are removed
            summary = {"removed_items": removed, "error": f"{type(e).__name__}: {e}"}
            note = f" Without the {removed} contaminated item(s) it cannot be decided ({type(e).__name__}: {e})."
        out.append(replace(g, explanation=g.explanation + note, details={**g.details, "without_contaminated": summary}))
    return out


def _candidate_dir(cfg: ReleaseConfig) -> Path | None:
    """The candidate's folder as the config names it (relative to the config's folder), where its training
    manifest may be; a registry version's copy is under `registry:DIR`."""
    spec = cfg.model.candidate_spec if cfg.model else None
    if not spec:
        return None
    if spec.startswith("registry:"):
        return resolve_registry(spec, cfg.base_dir, key=cfg.model.candidate_key).model
    p = Path(spec).expanduser()
    return p if p.is_absolute() else cfg.base_dir / p


def training_data(cfg: ReleaseConfig) -> tuple[str, ...]:
    """Training data of the candidate: [fine_tune] train / cpt_data / dpo_data, and the data named by the adapter's
    training manifest (and by the manifests of the adapters it was initialised from, e.g. a CPT stage)."""

    found: list[str] = []
    ft = cfg.fine_tune
    if ft is not None:
        found += [s for s in (ft.train, ft.cpt_data, ft.dpo_data) if s]
    adapter, seen = _candidate_dir(cfg), set()
    while adapter and str(adapter) not in seen:
        seen.add(str(adapter))
        m = find_manifest(Path(adapter))
        if m is None:
            break
        if m.train_path and Path(m.train_path).is_file():
            found.append(str(Path(m.train_path).resolve()))
        adapter = m.init_adapter
    return tuple(dict.fromkeys(found))


def _training_max_length(cfg: ReleaseConfig) -> int:
    """The candidate's training max_length: [fine_tune], else its training manifest, else 512."""

    if cfg.fine_tune and cfg.fine_tune.max_length:
        return cfg.fine_tune.max_length
    cand = _candidate_dir(cfg)
    m = find_manifest(cand) if cand else None
    return (m.max_length if m else None) or 512


def _check_chat_templates(datasets, *forms: Form) -> None:
    """Chat rows need a chat template in each variant's tokenizer: refuse before any model loads."""
    chat = [d for d in datasets if getattr(d, "needs_chat_template", False)]
    if not chat:
        return
    for tdir in {tokenizer_dir(f.base, f.adapter) for f in forms}:
        if read_chat_template(tdir) is None:
            raise HarnessError(
                f"{chat[0].path} has chat rows, but the tokenizer has no chat template to render them",
                where=str(tdir),
                fix="use a chat/instruct tokenizer (or save one with a chat_template beside the adapter), "
                "or give the data as text rows",
            )


def _data_key(g: Any, spec: str) -> str:
    """The config key that names `spec` in gate `g` (for errors: `[gates.perplexity] data`)."""
    for f in dataclasses.fields(g.params):
        v = getattr(g.params, f.name)
        if v == spec or (isinstance(v, (list, tuple)) and spec in v):
            return f"[gates.{g.name}] {f.name}"
    return f"[gates.{g.name}] data"


@dataclass
class Plan:
    """What each gate measures, on which data, and (sequential gates) at which looks."""

    cfg: ReleaseConfig
    requests: dict[str, list[MeasureRequest]]
    info: PlanInfo
    datasets: dict[tuple[str, str], Any]
    looks: dict[str, tuple[tuple[int, ...], int]]  # gate -> (item counts of the looks, current look)
    base: BaseModel  # the configured base
    reference: Form  # what the candidate is compared with (the `base` variant of every measurement)
    candidate: Form
    fps: dict[str, Fingerprint]
    backend_state: Any = None  # what the [model] backend's `prepare` found (the servers, for "openai")
    na: tuple[GateResult, ...] = ()  # gates with no question for the candidate's form (merge_parity on a merge)

    @property
    def adapter(self) -> AdapterInfo | None:
        """The candidate's adapter (None for a full checkpoint)."""
        return self.candidate.adapter

    @property
    def reference_label(self) -> str:
        """The word for the compared side in explanations and headings."""
        return "base" if self.reference.kind == "base" else "reference"

    @property
    def sizes(self) -> dict[str, int]:
        return {data: len(ds) for (_, data), ds in self.datasets.items()}

    def all_requests(self) -> list[MeasureRequest]:
        return list(dict.fromkeys(r for rs in self.requests.values() for r in rs))

    def next_looks(self, decided: list[GateResult]) -> list[str]:
        """Advance every undecided sequential gate that has looks left; return their names."""
        moved = []
        for g in decided:
            if g.name in self.looks and g.verdict == "inconclusive":
                sizes, k = self.looks[g.name]
                if k + 1 < len(sizes):
                    gc = self.cfg.gate(g.name)
                    self.looks[g.name] = (sizes, k + 1)
                    self.requests[g.name] = get_gate(g.name).sequential.requests(gc.params, sizes[k + 1])
                    moved.append(g.name)
        return moved


def measurement_cache_dir(cfg: ReleaseConfig) -> Path:
    """Where a config's measurements are cached: `[run] cache_dir`, else the user cache's `measurements`."""
    return Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root() / "measurements"


def make_plan(cfg: ReleaseConfig, *, preflight: bool = True, reference_only: bool = False) -> Plan:
    """Plan the run: each gate's requests, every data set loaded and validated, base and adapter checked, and
    the preflights run (unless `preflight` is off), all before any model is touched. `reference_only`: a helper's
    plan for the reference alone (its config names the reference as the candidate too: not refused as a pair)."""
    if cfg.model.candidate_spec is None:
        raise HarnessError(
            "no candidate configured",
            where=f"{cfg.path or '<config>'} [model] candidate",
            fix='add candidate = "path/to/adapter-or-model" (or adapter = "path/to/adapter") under [model]',
        )
    by_name = {g.name: g for g in cfg.gates}
    datasets: dict[tuple[str, str], Any] = {}

    def load(kind: str, data: str, gate_name: str) -> Any:
        if KINDS[kind].load_data is None:
            return None
        if (kind, data) not in datasets:
            key = _data_key(by_name[gate_name], data)
            datasets[(kind, data)] = KINDS[kind].load_data(data, cfg.base_dir, key=key)
        return datasets[(kind, data)]

    plan: dict[str, list[MeasureRequest]] = {}
    looks: dict[str, tuple[tuple[int, ...], int]] = {}
    for g in cfg.gates:
        gdef = get_gate(g.name)
        if gdef.plan is not None:
            continue
        seq = gdef.sequential.data(g.params) if gdef.sequential is not None else None
        if seq is not None:  # the looks are bounded by the smallest of the data sets they slice
            available = min(len(load(kind, data, g.name)) for kind, data in (seq if isinstance(seq, list) else [seq]))
            sizes = gdef.sequential.looks(g.params, available)
            looks[g.name] = (sizes, 0)
            plan[g.name] = gdef.sequential.requests(g.params, sizes[0])
        else:
            plan[g.name] = gdef.requests(g.params)
    info = PlanInfo(
        data=tuple(
            dict.fromkeys(
                r.data
                for rs in plan.values()
                for r in rs
                if set(r.variants) & set(VARIANTS) and r.data and KINDS[r.kind].load_data is not None
            )
        ),
        train=training_data(cfg),
    )
    for g in cfg.gates:
        if get_gate(g.name).plan is not None:
            plan[g.name] = get_gate(g.name).plan(g.params, info)
    plan = {g.name: plan[g.name] for g in cfg.gates}
    for name, rs in plan.items():
        for r in rs:
            load(r.kind, r.data, name)

    if preflight:  # training data under a licence the config refuses blocks before any model loads
        refuse_disallowed(list(info.train), cfg.base_dir, cfg.data, "[data] licences of the training data")
    base = resolve_base(cfg.model.base, cfg.base_dir, cfg.model.revision)
    candidate = resolve_form(cfg.model.candidate_spec, base, key=cfg.model.candidate_key, base_dir=cfg.base_dir)
    reference = resolve_form(cfg.model.reference, base, key="model.reference", base_dir=cfg.base_dir)
    na = [
        GateResult.not_applicable(g.name, reason, required=g.required)
        for g in cfg.gates
        if (reason := not_applicable(g.name, candidate.kind)) is not None
    ]
    if na:  # decided without measuring: the gate has no question for this form
        skip = {r.name for r in na}
        cfg = replace(cfg, gates=tuple(g for g in cfg.gates if g.name not in skip))
        plan = {k: v for k, v in plan.items() if k not in skip}
        looks = {k: v for k, v in looks.items() if k not in skip}
    token_gates = [
        name
        for name, rs in plan.items()
        if any(KINDS[r.kind].shared_tokens and {"base", "candidate"} <= set(r.variants) for r in rs)
    ]
    if not reference_only:
        check_pair(reference, candidate, token_gates=token_gates)
    _check_chat_templates(datasets.values(), reference, candidate)
    for r in dict.fromkeys(r for rs in plan.values() for r in rs):  # e.g. a judge endpoint must answer first
        if preflight and KINDS[r.kind].preflight is not None:
            KINDS[r.kind].preflight(r, cfg.base_dir)
    fps = {"base": reference.fingerprint, "candidate": candidate.fingerprint}
    state = _prepare_backend(cfg, reference, candidate, plan, preflight)
    return Plan(cfg, plan, info, datasets, looks, base, reference, candidate, fps, state, tuple(na))


# measurement kinds that read log-probabilities of base and candidate (a server must offer them)
_LOGLIK_KINDS = ("nll", "choices", "preference")


def _prepare_backend(cfg: ReleaseConfig, reference: Form, candidate: Form, plan: dict, check: bool) -> Any:
    """The backend's checks before any gate runs (with `check`: a vLLM that imports, servers that answer and serve
    what the config names); what it returns is the state its runtimes are opened with."""
    spec = cfg.model
    needs = any(r.kind in _LOGLIK_KINDS for rs in plan.values() for r in rs)
    where = f"{cfg.path or '<config>'} [model]"
    setup = Setup(spec.options, reference, candidate, where=where, needs_loglik=needs, check=check)
    return get_backend(spec.backend).prepare(setup)


def _power_requests(pl: Plan) -> dict[str, list[MeasureRequest]]:
    """The requests each gate with a power estimate reads: sequential gates at their largest look."""
    out = {}
    for g in pl.cfg.gates:
        gdef = get_gate(g.name)
        if gdef.power is not None:
            lk = pl.looks.get(g.name)
            out[g.name] = gdef.sequential.requests(g.params, lk[0][-1]) if lk else pl.requests[g.name]
    return out


def power_table(pl: Plan, measurements: dict) -> dict[str, list[Power]]:
    """Each statistical gate's resolvable margin, from the measurements at hand (none, the base's, or both).
    Sequential gates are judged at their largest look."""
    out = {}
    planned = _power_requests(pl)
    for g in pl.cfg.gates:
        gdef = get_gate(g.name)
        if gdef.power is None:
            continue
        lk = pl.looks.get(g.name)
        reqs = planned[g.name]
        ctx = GateContext(
            name=g.name,
            required=g.required,
            seed=pl.cfg.run.seed,
            measurements=measurements,
            requests=tuple(reqs),
            looks=(lk[0][-1],) if lk else (),
            sizes=pl.sizes,
        )
        try:
            out[g.name] = list(gdef.power(g.params, ctx))
        except Exception:  # the power table informs; it never decides
            log.debug("power of %s failed", g.name, exc_info=True)
    return out


def _flat(requests: dict[str, list[MeasureRequest]]) -> list[MeasureRequest]:
    return list(dict.fromkeys(r for rs in requests.values() for r in rs))


def plan_power(config: ReleaseConfig | str | Path) -> tuple[Plan, dict[str, list[Power]]]:
    """`harness plan`: each gate's items and resolvable margin, from the cache where it can answer (the base's
    measurement, or both variants'), else from a stated prior. Loads no model and contacts no endpoint."""
    cfg = config if isinstance(config, ReleaseConfig) else load_config(config)
    pl = make_plan(cfg, preflight=False)
    cache = MeasurementCache(measurement_cache_dir(cfg))
    return pl, power_table(pl, Measurer(pl, cache).cached(_flat(_power_requests(pl))))


def power_warnings(table: dict[str, list[Power]], reference: str = "base") -> list[str]:
    """Each interval that cannot resolve its tolerance, in words; `reference` names the compared side."""
    return [
        f"{name}: {p.measure}: a {p.items}-item interval resolves about +-{p.half_width:.3g} (sd from "
        f"{reference if p.sd_source == 'base' else p.sd_source}"
        + (
            f", an upper bound: as if the candidate answered independently of the {reference}; paired answers "
            "usually agree far more, and the measured sd replaces it once both are measured)"
            if p.upper_bound
            else ")"
        )
        + f", wider than the tolerance {p.tolerance:.3g}; about {p.items_needed} items would resolve it"
        for name, rows in table.items()
        for p in rows
        if not p.resolves
    ]


def measure_and_decide(
    cfg: ReleaseConfig, pl: Plan, measurer: Measurer, *, variants_only: bool = False
) -> tuple[dict, list[GateResult]]:
    """Measure what the plan asks (sequential gates looking again while undecided) and decide every gate, in the
    config's order with the gates that have no question for this form. `harness gate` measures; `harness promote`
    replays the same run from the cache through this same code (`Replay`), so both decide alike; a helper process
    (`harness.workers`) follows the same looks measuring only the variants' cached measurements."""
    timed = [r for r in pl.all_requests() if KINDS[r.kind].timed]  # latency: last, with nothing else running
    results, errors = measurer.measure([r for r in pl.all_requests() if r not in timed], variants_only=variants_only)
    gate_results = _decide(pl.cfg, pl.requests, results, errors, pl.looks, pl.sizes, pl.reference_label)
    while moved := pl.next_looks(gate_results):  # sequential gates that could not decide look at more items
        log.info("undecided, looking again on more items: %s", ", ".join(moved))
        new = [r for r in pl.all_requests() if not any((r, v) in results for v in r.variants) and r not in timed]
        more, more_errors = measurer.measure(new, results, variants_only=variants_only)
        results.update(more)
        errors.update(more_errors)
        gate_results = _decide(pl.cfg, pl.requests, results, errors, pl.looks, pl.sizes, pl.reference_label)
    if timed and not variants_only:
        measurer.quiet()
        more, more_errors = measurer.measure(timed, results)
        results.update(more)
        errors.update(more_errors)
        gate_results = _decide(pl.cfg, pl.requests, results, errors, pl.looks, pl.sizes, pl.reference_label)
    after = power_table(pl, results)
    gate_results = [
        replace(g, details={**g.details, "power": [dataclasses.asdict(p) for p in after[g.name]]})
        if g.name in after
        else g
        for g in gate_results
    ]
    order = [g.name for g in cfg.gates]  # the config's order, the gates with no question for this form included
    return results, sorted([*gate_results, *pl.na], key=lambda g: order.index(g.name))


def _items(pl: Plan, results: dict) -> tuple[list[ItemRow] | None, str]:
    """The rows of items.parquet from the measurements the gates decided on (`reports.items`); a table that cannot
    be built never costs the report: a note says so."""
    try:
        return item_rows(pl.requests, results, {g.name: g.params for g in pl.cfg.gates}, pl.datasets), ""
    except Exception as e:
        log.debug("items table failed", exc_info=True)
        return None, f"items table not built ({type(e).__name__}: {e})"


def run(
    config: ReleaseConfig | str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    log_to: str = "none",
) -> RunResult:
    """Gate a candidate adapter against its base as the config says; write reports to `out` if given, and the
    verdict with every gate's metric to the experiment tracker `log_to` (`harness.core.tracking`)."""
    t0 = time.perf_counter()
    require_tracker(log_to, "--log-to")  # before any model loads
    cfg = config if isinstance(config, ReleaseConfig) else load_config(config)
    out_dir = prepare_out_dir(Path(out), overwrite) if out is not None else None
    pl = make_plan(cfg)
    made = make_out_dir(out_dir) if out_dir is not None else []  # once the plan holds: bad input leaves nothing
    try:
        return _run(cfg, pl, out_dir, log_to, t0)
    except BaseException:
        remove_made(made)  # only the folders it made, and only while empty
        raise


def _run(cfg: ReleaseConfig, pl: Plan, out_dir: Path | None, log_to: str, t0: float) -> RunResult:
    timings: dict[str, float] = {}
    base, datasets = pl.base, pl.datasets
    timings["plan"] = time.perf_counter() - t0

    cache = MeasurementCache(measurement_cache_dir(cfg))
    run_id = uuid.uuid4().hex
    measurer = Measurer(pl, cache, run_id)
    before = power_table(pl, measurer.cached(_flat(_power_requests(pl))))
    warnings = power_warnings(before, pl.reference_label)
    for w in warnings:
        console.print(f"[yellow]warning[/]: tolerance below the resolvable margin: {escape(w)}", soft_wrap=True)
    t1 = time.perf_counter()
    with workers.helping(cfg, cache.root) as helpers:
        measurer.quiet = helpers.stop
        results, gate_results = measure_and_decide(cfg, pl, measurer)
    timings["measure"] = time.perf_counter() - t1

    measurer.close()
    timings["total"] = time.perf_counter() - t0
    manifest = build_manifest(
        config_path=cfg.path,
        config=cfg.raw,
        base=base,
        base_fp=fingerprint(base),
        reference=pl.reference,
        candidate=pl.candidate,
        datasets=list(datasets.values()),
        seed=cfg.run.seed,
        revision=cfg.model.revision,
        device=measurer.device,
        cache={"dir": str(cache.root), "hits": cache.hits, "misses": cache.misses},
        timings=timings,
    )
    manifest["runtimes"] = measurer.runtimes.describe()
    manifest["workers"] = 1 + helpers.started
    manifest["measurements_s"] = measurer.timings  # this process's own (a helper's are not here)
    manifest["run_id"] = run_id  # `harness promote` replays the decisions from what this run recorded under it
    for (req, _), value in results.items():  # measurements the manifest records (the training data's audit)
        if KINDS[req.kind].manifest_key:
            manifest[KINDS[req.kind].manifest_key] = KINDS[req.kind].dump(value)
    items, items_note = _items(pl, results)
    if items is not None:  # what items.parquet holds: the renderers say where a gate's every item is
        gates = list(dict.fromkeys(r.gate for r in items))
        manifest["items"] = {"file": ITEMS_FILE, "schema_version": ITEMS_SCHEMA, "rows": len(items), "gates": gates}
    report = Report(
        verdict=release_verdict(gate_results),
        gates=tuple(gate_results),
        candidate=pl.candidate.to_dict(),
        reference=pl.reference.to_dict(),
        manifest=manifest,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=tuple(pl.adapter.warnings if pl.adapter else ())
        + tuple(f.adapter.warnings[0] for f in (pl.reference,) if f.adapter and f.adapter.warnings)
        + tuple(f"Power before measuring: {w}." for w in warnings)
        + ((items_note,) if items_note else ()),
    )
    files = write_reports(report, out_dir, items) if out_dir is not None else {}
    tracked = log_report(report, log_to, out_dir)
    return RunResult(report, out_dir, files, cache.hits, cache.misses, tracked)
