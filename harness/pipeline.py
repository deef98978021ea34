"""The one pipeline: config -> plan -> measure -> decide -> record -> report.

The CLI, `harness.run()` and the pytest plugin all call `run()`. Measuring loads models lazily:
when every measurement is in the cache, no model (and not even torch) is loaded.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gates import GateContext, GateResult, MeasureRequest, get_gate, release_verdict
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
        ctx = GateContext(name=g.name, required=g.required, seed=cfg.run.seed, measurements=results)
        try:
            out.append(gdef.decide(g.params, ctx))
        except Exception as e:
            log.debug("gate %s raised:\n%s", g.name, traceback.format_exc())
            out.append(GateResult.errored(g.name, e, required=g.required))
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
    plan = {g.name: get_gate(g.name).requests(g.params) for g in cfg.gates}
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
