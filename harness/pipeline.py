"""The one pipeline: config -> plan -> measure -> decide -> record -> report.

The CLI, `harness.run()` and the pytest plugin all call `run()`. Measuring loads models lazily:
when every measurement is in the cache, no model (and not even torch) is loaded.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gates import GateContext, GateResult, MeasureRequest, get_gate, release_verdict
from gates.registry import PlanInfo
from harness.cache import MeasurementCache
from harness.config import ReleaseConfig, load_config
from harness.console import status
from harness.errors import HarnessError
from harness.manifest import build_manifest
from harness.measure import KINDS
from harness.models import (
    AdapterInfo,
    BaseModel,
    Fingerprint,
    attach_adapter,
    check_adapter,
    fingerprint,
    load_base_model,
    load_tokenizer,
    read_chat_template,
    resolve_base,
    tokenizer_dir,
)
from harness.paths import cache_root
from reports import write_reports
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

    @property
    def passed(self) -> bool:
        return self.report.verdict == "pass"


def prepare_out_dir(out: Path, overwrite: bool) -> Path:
    """Create `out`; refuse to replace an existing report unless asked (nothing of the user's is lost)."""
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
    out.mkdir(parents=True, exist_ok=True)
    return out


class _Measurer:
    """Runs the measurements a plan needs for one variant at a time, loading models only on a cache miss."""

    def __init__(self, cfg: ReleaseConfig, base: BaseModel, adapter: AdapterInfo, cache: MeasurementCache):
        self.cfg, self.base, self.adapter, self.cache = cfg, base, adapter, cache
        self.model: Any = None
        self.device: str | None = None
        self._attached = False
        self._tokenizers: dict[str, Any] = {}

    def _model_for(self, variant: str) -> tuple[Any, Any]:
        spec = self.cfg.model
        if self.model is None:
            with status(f"Loading base model {self.base.id}"):
                self.model = load_base_model(
                    self.base, device=spec.device, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code
                )
            self.device = str(next(self.model.parameters()).device)
        if variant == "candidate" and not self._attached:
            with status(f"Attaching adapter {self.adapter.dir.name}"):
                self.model = attach_adapter(self.model, self.adapter)
            self._attached = True
        if variant not in self._tokenizers:
            tdir = tokenizer_dir(self.base, self.adapter if variant == "candidate" else None)
            self._tokenizers[variant] = load_tokenizer(tdir, trust_remote_code=spec.trust_remote_code)
        return self.model, self._tokenizers[variant]

    def _one(
        self, req: MeasureRequest, variant: str, datasets: dict[tuple[str, str], Any], fps: dict[str, Fingerprint]
    ) -> Any:
        kind = KINDS[req.kind]
        if not kind.needs_model:
            return kind.run(self.adapter, req.data, **req.opts)
        ds = datasets[(req.kind, req.data)]
        keyed = {k: v for k, v in req.options if k not in kind.runtime_options}
        key = self.cache.key(
            kind=req.kind, code=kind.code_sha256(), data=ds.sha256, options=keyed, model=fps[variant].key
        )
        hit = self.cache.get(key)
        if hit is not None:
            return kind.load(hit)
        model, tok = self._model_for(variant)
        value = kind.run(model, tok, ds, description=f"{req.kind} {variant} on {ds.name}", **req.opts)
        self.cache.put(key, kind.dump(value))
        return value

    def measure(
        self, requests: list[MeasureRequest], datasets: dict[tuple[str, str], Any], fps: dict[str, Fingerprint]
    ) -> tuple[dict[tuple[MeasureRequest, str], Any], dict[tuple[MeasureRequest, str], BaseException]]:
        results: dict[tuple[MeasureRequest, str], Any] = {}
        errors: dict[tuple[MeasureRequest, str], BaseException] = {}
        for req in requests:  # about the data alone (e.g. contamination): once, before any model loads
            if "data" not in req.variants:
                continue
            try:
                results[(req, "data")] = KINDS[req.kind].run(
                    req, self.cfg.base_dir, self.base, self.adapter, self.cache
                )
            except HarnessError:
                raise
            except Exception as e:
                log.debug("measurement failed", exc_info=True)
                errors[(req, "data")] = e
        for variant in VARIANTS:  # base first: the candidate wraps the same loaded model
            for req in requests:
                if variant not in req.variants:
                    continue
                try:
                    results[(req, variant)] = self._one(req, variant, datasets, fps)
                except HarnessError:
                    raise  # bad input: exit 2 with the place and the fix
                except Exception as e:  # a crashed measurement becomes an `error` verdict, never a pass
                    log.debug("measurement failed", exc_info=True)
                    errors[(req, variant)] = e
        for req in requests:  # comparisons of two variants' measurements (e.g. a judge), once both exist
            if "pair" not in req.variants:
                continue
            src = req.opts["source"]
            if any((src, v) in errors for v in VARIANTS):
                continue  # the gate reports the failed source measurement
            try:
                results[(req, "pair")] = KINDS[req.kind].run(
                    req,
                    datasets[(src.kind, src.data)],
                    results[(src, "base")],
                    results[(src, "candidate")],
                    self.cache,
                    self.cfg.base_dir,
                )
            except HarnessError:
                raise
            except Exception as e:
                log.debug("measurement failed", exc_info=True)
                errors[(req, "pair")] = e
        return results, errors


def _decide(cfg: ReleaseConfig, plan: dict[str, list[MeasureRequest]], results: dict, errors: dict) -> list[GateResult]:
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
                    f"measuring {r.kind} of the {v} on {r.data} failed: {type(e).__name__}: {e}"
                    if v != "pair"
                    else f"{r.kind} on {r.data} failed: {type(e).__name__}: {e}",
                    required=g.required,
                )
            )
            continue
        ctx = GateContext(
            name=g.name, required=g.required, seed=cfg.run.seed, measurements=results, requests=tuple(plan[g.name])
        )
        try:
            out.append(gdef.decide(g.params, ctx))
        except Exception as e:
            log.debug("gate %s raised:\n%s", g.name, traceback.format_exc())
            out.append(GateResult.errored(g.name, e, required=g.required))
    return _without_contaminated(cfg, plan, results, out)


def _without_contaminated(
    cfg: ReleaseConfig, plan: dict[str, list[MeasureRequest]], results: dict, decided: list[GateResult]
) -> list[GateResult]:
    """Each gate that measured on contaminated items is decided again without them; both numbers are shown."""
    dirty: dict[str, set[str]] = {}
    for g in decided:
        if g.name == "contamination" and g.verdict in ("pass", "fail"):
            for spec, s in g.details.get("sets", {}).items():
                if s.get("ids"):
                    dirty[spec] = set(s["ids"])
    if not dirty:
        return decided
    by_name = {g.name: g for g in cfg.gates}
    out = []
    for g in decided:
        hit = {r.data for r in plan.get(g.name, []) if r.data in dirty}
        if g.name == "contamination" or g.verdict == "error" or not hit:
            out.append(g)
            continue
        clean = {
            key: value.without(dirty[key[0].data]) if key[0].data in dirty and hasattr(value, "without") else value
            for key, value in results.items()
        }
        removed = sum(len(dirty[d]) for d in hit)
        gc = by_name[g.name]
        ctx = GateContext(
            name=g.name, required=gc.required, seed=cfg.run.seed, measurements=clean, requests=tuple(plan[g.name])
        )
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


def training_data(cfg: ReleaseConfig) -> tuple[str, ...]:
    """Training data of the candidate: [fine_tune] train / cpt_data, and the data named by the adapter's
    training manifest (and by the manifests of the adapters it was initialised from, e.g. a CPT stage)."""
    import json

    from probes.training_log import TRAINING_MANIFEST

    found: list[str] = []
    ft = cfg.fine_tune
    if ft is not None:
        found += [s for s in (ft.train, ft.cpt_data) if s]
    adapter, seen = cfg.model.adapter, set()
    while adapter and str(adapter) not in seen:
        seen.add(str(adapter))
        path = Path(adapter) / TRAINING_MANIFEST
        try:
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            break
        train = (m.get("data") or {}).get("train") or {}
        if train.get("path") and Path(train["path"]).is_file():
            found.append(str(Path(train["path"]).resolve()))
        adapter = m.get("init_adapter")
    return tuple(dict.fromkeys(found))


def _audits(cfg: ReleaseConfig, train: tuple[str, ...], base: BaseModel, adapter: AdapterInfo) -> list[dict]:
    """The dataset audit of each training set, for the report (a failed audit is noted, never fatal)."""
    import json

    from harness.audit import audit
    from probes.training_log import TRAINING_MANIFEST

    max_length = cfg.fine_tune.max_length if cfg.fine_tune else None
    if max_length is None:
        try:
            m = json.loads((adapter.dir / TRAINING_MANIFEST).read_text(encoding="utf-8"))
            max_length = int(m["config"]["max_length"])
        except (OSError, ValueError, KeyError, TypeError):
            max_length = 512
    out = []
    for spec in train:
        try:
            a = audit(
                spec, cfg.base_dir, tokenizer=base.id, tok_dir=tokenizer_dir(base, adapter), max_length=max_length
            )
            out.append(a.to_dict())
        except Exception as e:  # the audit informs; it does not decide
            log.debug("audit failed", exc_info=True)
            out.append({"name": spec, "error": f"{type(e).__name__}: {e}"})
    return out


def _check_chat_templates(datasets, base: BaseModel, adapter: AdapterInfo) -> None:
    """Chat rows need a chat template in each variant's tokenizer: refuse before any model loads."""
    chat = [d for d in datasets if d.needs_chat_template]
    if not chat:
        return
    for tdir in {tokenizer_dir(base), tokenizer_dir(base, adapter)}:
        if read_chat_template(tdir) is None:
            raise HarnessError(
                f"{chat[0].path} has chat rows, but the tokenizer has no chat template to render them",
                where=str(tdir),
                fix="use a chat/instruct tokenizer (or save one with a chat_template beside the adapter), "
                "or give the data as text rows",
            )


def run(config: ReleaseConfig | str | Path, out: str | Path | None = None, *, overwrite: bool = False) -> RunResult:
    """Gate a candidate adapter against its base as the config says; write reports to `out` if given."""
    t0 = time.perf_counter()
    cfg = config if isinstance(config, ReleaseConfig) else load_config(config)
    out_dir = prepare_out_dir(Path(out), overwrite) if out is not None else None
    if cfg.model.adapter is None:
        raise HarnessError(
            "no candidate adapter configured",
            where=f"{cfg.path or '<config>'} [model] adapter",
            fix='add adapter = "path/to/adapter" under [model]',
        )
    timings: dict[str, float] = {}

    # plan: what each gate needs; load and validate all data before any model is touched
    plan = {g.name: get_gate(g.name).requests(g.params) for g in cfg.gates if get_gate(g.name).plan is None}
    info = PlanInfo(
        data=tuple(dict.fromkeys(r.data for rs in plan.values() for r in rs if KINDS[r.kind].needs_model)),
        train=training_data(cfg),
    )
    planned = {g.name: get_gate(g.name).plan(g.params, info) for g in cfg.gates if get_gate(g.name).plan}
    plan = {g.name: plan[g.name] if g.name in plan else planned[g.name] for g in cfg.gates}
    requests = list(dict.fromkeys(r for rs in plan.values() for r in rs))
    datasets = {
        (r.kind, r.data): KINDS[r.kind].load_data(r.data, cfg.base_dir, key=f"[gates] data = {r.data!r}")
        for r in requests
        if KINDS[r.kind].needs_model
    }

    base = resolve_base(cfg.model.base, cfg.base_dir, cfg.model.revision)
    adapter = check_adapter(cfg.model.adapter, base)
    _check_chat_templates(datasets.values(), base, adapter)
    for r in requests:  # e.g. a judge endpoint must answer before hours of generation start
        if KINDS[r.kind].preflight is not None:
            KINDS[r.kind].preflight(r, cfg.base_dir)
    fps = {"base": fingerprint(base), "candidate": fingerprint(base, adapter)}
    timings["plan"] = time.perf_counter() - t0

    cache = MeasurementCache(Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root() / "measurements")
    measurer = _Measurer(cfg, base, adapter, cache)
    t1 = time.perf_counter()
    results, errors = measurer.measure(requests, datasets, fps)
    timings["measure"] = time.perf_counter() - t1

    gate_results = _decide(cfg, plan, results, errors)
    audits = _audits(cfg, info.train, base, adapter) if any(g.name == "contamination" for g in cfg.gates) else []
    timings["total"] = time.perf_counter() - t0
    manifest = build_manifest(
        config_path=cfg.path,
        config=cfg.raw,
        base=base,
        base_fp=fps["base"],
        adapter=adapter,
        cand_fp=fps["candidate"],
        datasets=list(datasets.values()),
        seed=cfg.run.seed,
        revision=cfg.model.revision,
        device=measurer.device,
        cache={"dir": str(cache.root), "hits": cache.hits, "misses": cache.misses},
        timings=timings,
    )
    if audits:
        manifest["dataset_audit"] = audits
    report = Report(
        verdict=release_verdict(gate_results),
        gates=tuple(gate_results),
        candidate={"adapter": str(adapter.dir), "adapter_sha256": adapter.sha256, "base": base.id},
        manifest=manifest,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=tuple(adapter.warnings),
    )
    files = write_reports(report, out_dir) if out_dir is not None else {}
    return RunResult(report, out_dir, files, cache.hits, cache.misses)
