"""Gates on what ships: `merge_parity` (merged vs unmerged), `gguf_parity` (exported GGUF vs merge, tokenizer
included) and `template_drift` (one chat template from training to GGUF, EOS = end of turn, generation stops).
Deciding is pure; the measurements are in harness/shipping.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gates.registry import GateContext, MeasureRequest, gate
from gates.types import Example, GateResult, Table

PROMPTS = "builtin:judge_general"
# thresholds per GGUF type: (mean KL at most, top-1 agreement at least, at positions whose top token leads by
# >= probes.parity.TIE_MARGIN); measured on SmolLM2-135M: F16 mean KL ~5e-6 and top-1 1.00, Q8_0 ~4e-3 and ~0.95
# (README). Counting near-ties, an F16 export of the demo's adapter agreed on 0.985 (max |delta logit| 0.048).
GGUF_LIMITS = {"F32": (1e-6, 0.999), "F16": (1e-4, 0.99), "Q8_0": (2e-2, 0.9)}


def _req(kind: str, data: str, **opts: Any) -> MeasureRequest:
    return MeasureRequest(kind, data, tuple(sorted(opts.items())), variants=("data",))


def _ships(*rows: tuple[str, str]) -> tuple[Table, ...]:
    """Rows of the report's "what ships" table (files, sizes, hashes, bundle)."""
    return (Table("What ships", ("", ""), tuple(rows), section="ships"),) if rows else ()


def _fmt(x: float) -> str:
    return f"{x:.3g}"


@dataclass(frozen=True)
class MergeParityParams:
    data: str = field(default=PROMPTS, metadata={"path": True, "help": "prompts compared (first max_prompts)"})
    max_prompts: int = field(default=8, metadata={"help": "prompts compared"})
    max_new_tokens: int = field(default=24, metadata={"help": "greedy tokens compared per prompt"})
    max_abs_logit: float = field(default=1e-3, metadata={"help": "largest tolerated |delta logit| (fp32: ~1e-5)"})
    max_mean_kl: float = field(default=1e-6, metadata={"help": "largest tolerated mean KL (nats)"})
    min_top1: float = field(default=0.999, metadata={"help": "smallest tolerated top-1 agreement"})
    require_greedy_equal: bool = field(default=True, metadata={"help": "greedy completions must be identical"})


def _merge_requests(p: MergeParityParams) -> list[MeasureRequest]:
    return [_req("merge_parity", p.data, max_prompts=p.max_prompts, max_new_tokens=p.max_new_tokens)]


def _top1(par: dict[str, Any]) -> float:
    """Top-1 agreement at decisive positions (near-ties left out); measurements from before that: all positions."""
    return par["top1_decisive"] if "top1_decisive" in par else par["top1"]


def _top1_text(par: dict[str, Any], digits: int) -> str:
    text = f"{_top1(par):.{digits}f}"
    if "top1_decisive" in par:
        ties = par["positions"] - par["decisive_positions"]
        text += f" ({ties} near-tie position(s) left out, all positions {par['top1']:.{digits}f})"
    return text


def _parity_checks(par: dict[str, Any], max_kl: float, min_top1: float, max_abs: float | None, greedy: bool) -> dict:
    checks = {
        "mean KL": par["mean_kl"] <= max_kl,
        "top-1 agreement": _top1(par) >= min_top1,
    }
    if max_abs is not None:
        checks["max |delta logit|"] = par["max_abs_logit"] <= max_abs
    if greedy:
        checks["greedy completions equal"] = par["greedy_equal"] == 1.0
    return checks


def _differing(par: dict[str, Any], note: str) -> tuple[Example, ...]:
    return tuple(
        Example(
            id=f"prompt-{i}", prompt=d["prompt"], base_output=d["reference"], candidate_output=d["other"], note=note
        )
        for i, d in enumerate(par.get("differing", []))
    )


@gate(
    "merge_parity",
    params=MergeParityParams,
    requests=_merge_requests,
    only_for=("adapter",),
    reason_na="the candidate is already merged (a full checkpoint): there is no adapter to merge",
)
def merge_parity(p: MergeParityParams, ctx: GateContext) -> GateResult:
    """The merged (full-precision) model behaves like base + adapter unmerged."""
    m = ctx.get(_merge_requests(p)[0], "data")
    par = m["parity"]
    checks = _parity_checks(par, p.max_mean_kl, p.min_top1, p.max_abs_logit, p.require_greedy_equal)
    if m["dtype"] not in ("float32", "float16", "bfloat16"):
        checks["full-precision merge"] = False
    bad = [k for k, ok in checks.items() if not ok]
    text = (
        f"Merged ({m['dtype']}, onto {m['merge'].get('merged_onto')}) vs unmerged adapter on {par['prompts']} "
        f"prompts ({par['positions']} positions): max |delta logit| {_fmt(par['max_abs_logit'])} (<= "
        f"{_fmt(p.max_abs_logit)}), mean KL {_fmt(par['mean_kl'])} (<= {_fmt(p.max_mean_kl)}), top-1 agreement "
        f"{_top1_text(par, 4)} (>= {p.min_top1}), greedy completions equal on {par['greedy_equal']:.0%}. "
    )
    text += f"Not within tolerance: {', '.join(bad)}." if bad else "The merge is faithful."
    if m["merge"].get("dequantized_nf4"):
        text += " QLoRA adapter: merged onto the full-precision weights; the NF4 base it trained on is recorded."
    return GateResult(
        name=ctx.name,
        verdict="fail" if bad else "pass",
        metric="max |delta logit| merged vs unmerged",
        required=ctx.required,
        baseline=0.0,
        candidate=round(par["max_abs_logit"], 8),
        delta=round(par["max_abs_logit"], 8),
        threshold=p.max_abs_logit,
        explanation=text,
        evidence=_differing(par, "greedy completion differs (reference: unmerged; other: merged)"),
        details={**m, "checks": checks},
        tables=_ships(("merged model", f"`{m['merged_dir']}` ({m['dtype']}, onto {m['merge'].get('merged_onto')})")),
    )


@dataclass(frozen=True)
class GGUFParityParams:
    types: list[str] = field(default_factory=lambda: ["F16", "Q8_0"], metadata={"help": "GGUF types: F32 F16 Q8_0"})
    data: str = field(default=PROMPTS, metadata={"path": True, "help": "prompts compared (first max_prompts)"})
    max_prompts: int = field(default=8, metadata={"help": "prompts compared"})
    max_new_tokens: int = field(default=24, metadata={"help": "greedy tokens compared per prompt"})
    f16_max_mean_kl: float = field(default=GGUF_LIMITS["F16"][0], metadata={"help": "F16: mean KL at most"})
    q8_0_max_mean_kl: float = field(default=GGUF_LIMITS["Q8_0"][0], metadata={"help": "Q8_0: mean KL at most"})
    q8_0_min_top1: float = field(default=GGUF_LIMITS["Q8_0"][1], metadata={"help": "Q8_0: top-1 at least"})
    llama_cpp: bool = field(default=True, metadata={"help": "also run the GGUF in llama.cpp when installed"})
    llama_cpp_min_greedy_equal: float = field(
        default=0.75, metadata={"help": "F32/F16 in llama.cpp: share of greedy completions equal to the merge's"}
    )

    def __post_init__(self) -> None:
        bad = [t for t in self.types if t not in GGUF_LIMITS]
        if bad or not self.types:
            raise ValueError([("types", f"must be a non-empty list of {', '.join(GGUF_LIMITS)}; got {bad or '[]'}")])

    def limits(self, qtype: str) -> tuple[float, float]:
        if qtype == "F16":
            return self.f16_max_mean_kl, GGUF_LIMITS["F16"][1]
        if qtype == "Q8_0":
            return self.q8_0_max_mean_kl, self.q8_0_min_top1
        return GGUF_LIMITS[qtype]


def _gguf_requests(p: GGUFParityParams) -> list[MeasureRequest]:
    return [
        _req(
            "gguf_parity",
            p.data,
            types=tuple(p.types),
            max_prompts=p.max_prompts,
            max_new_tokens=p.max_new_tokens,
            llama_cpp=p.llama_cpp,
        )
    ]


@gate("gguf_parity", params=GGUFParityParams, requests=_gguf_requests)
def gguf_parity(p: GGUFParityParams, ctx: GateContext) -> GateResult:
    """Each exported GGUF, read back, behaves like the merged model (per-type thresholds); same tokenizer."""
    m = ctx.get(_gguf_requests(p)[0], "data")
    parts, bad, evidence, worst_kl = [], [], [], 0.0
    checks: dict[str, dict[str, bool]] = {}
    for qtype, r in m["types"].items():
        par, tk = r["parity"], r["tokenizer"]
        max_kl, min_top1 = p.limits(qtype)
        c = _parity_checks(par, max_kl, min_top1, None, greedy=False)
        c["tokenizer ids"] = not tk["strings_differing"] and not tk["conversations_differing"]
        c["special ids"] = tk["specials_equal"]
        lc = r.get("llama_cpp")
        if lc is not None:
            c["llama.cpp runs it"] = "error" not in lc
        if lc is not None and qtype in ("F32", "F16"):
            c["llama.cpp greedy"] = lc["greedy_equal"] >= p.llama_cpp_min_greedy_equal
        checks[qtype] = c
        worst_kl = max(worst_kl, par["mean_kl"])
        bad += [f"{qtype} {k}" for k, ok in c.items() if not ok]
        parts.append(
            f"{qtype} ({r['bytes'] / 1e6:.0f} MB): mean KL {_fmt(par['mean_kl'])} (<= {_fmt(max_kl)}), top-1 "
            f"{_top1_text(par, 3)} (>= {min_top1}), max |delta logit| {_fmt(par['max_abs_logit'])}, greedy equal "
            f"{par['greedy_equal']:.0%}, tokenizer "
            + ("identical" if c["tokenizer ids"] and c["special ids"] else "DIFFERS")
        )
        if lc is not None:
            parts[-1] += (
                f"; llama.cpp failed: {lc['error']}"
                if "error" in lc
                else f"; in llama.cpp {lc['version']}: greedy equal {lc['greedy_equal']:.0%}"
            )
            evidence += list(_differing(lc, f"{qtype} in llama.cpp differs from the merged model (other: llama.cpp)"))
        evidence += list(_differing(par, f"{qtype} greedy completion differs (reference: merged)"))
    text = "GGUF read back by transformers vs the merged model: " + "; ".join(parts) + ". "
    if p.llama_cpp and not m.get("llama_cpp_installed"):
        text += "(llama.cpp is not installed, so the GGUFs were not run in it: pip install llama-cpp-python.) "
    text += f"Not within tolerance: {', '.join(bad)}." if bad else "Every export is faithful."
    return GateResult(
        name=ctx.name,
        verdict="fail" if bad else "pass",
        metric="largest mean KL, GGUF vs merged (nats)",
        required=ctx.required,
        baseline=0.0,
        candidate=worst_kl,
        delta=worst_kl,
        threshold=max(p.limits(t)[0] for t in p.types),
        explanation=text,
        evidence=tuple(evidence[:5]),
        details={**m, "checks": checks},
        tables=_ships(
            *(
                (f"GGUF {qtype}", f"`{r['path']}` ({r['bytes'] / 1e6:.1f} MB, sha256 `{r['sha256'][:16]}…`)")
                for qtype, r in m["types"].items()
            )
        ),
    )


@dataclass(frozen=True)
class TemplateDriftParams:
    data: str = field(default=PROMPTS, metadata={"path": True, "help": "conversations rendered and generated"})
    max_prompts: int = field(default=8, metadata={"help": "conversations checked"})
    gguf_type: str = field(default="F16", metadata={"help": "the GGUF whose template is checked"})
    max_new_tokens: int = field(default=128, metadata={"help": "greedy generation must stop within this"})
    min_stop_rate: float = field(default=0.75, metadata={"help": "share of greedy generations that must stop"})


def _template_requests(p: TemplateDriftParams) -> list[MeasureRequest]:
    return [
        _req(
            "template_drift",
            p.data,
            gguf_type=p.gguf_type,
            max_prompts=p.max_prompts,
            max_new_tokens=p.max_new_tokens,
        )
    ]


@gate("template_drift", params=TemplateDriftParams, requests=_template_requests)
def template_drift(p: TemplateDriftParams, ctx: GateContext) -> GateResult:
    """One chat template from training to GGUF; same rendered ids; end of turn is EOS; generation stops."""
    m = ctx.get(_template_requests(p)[0], "data")
    hashes = {k: v for k, v in m["hashes"].items() if v is not None}
    ref = m["hashes"]["training"] or m["hashes"]["adapter"]
    drifted = [k for k, v in hashes.items() if v != ref]
    stop_rate = m["stopped"] / max(m["prompts"], 1)
    checks = {
        "template hashes equal": not drifted and len(hashes) >= 3,
        "rendered ids equal": not m["rendered_differ"],
        "end of turn is EOS (generation config)": m["eot_id"] in m["generation_config_eos"],
        "end of turn is EOS (GGUF)": m["gguf_eos"] == m["eot_id"],
        "greedy generation stops": stop_rate >= p.min_stop_rate,
    }
    bad = [k for k, ok in checks.items() if not ok]
    short = {k: (v[:12] + "…" if v else "not recorded") for k, v in m["hashes"].items()}
    text = (
        "Chat template sha256 at training / adapter / merged / GGUF: "
        + " / ".join(short[k] for k in ("training", "adapter", "merged", "gguf"))
        + (f" (differs from training: {', '.join(drifted)})" if drifted else "")
        + f". {m['prompts'] - len(m['rendered_differ'])} of {m['prompts']} conversations render to the same ids in "
        f"all three tokenizers. End of turn {m['eot_token']!r} (id {m['eot_id']}): generation config EOS "
        f"{m['generation_config_eos']}, GGUF EOS {m['gguf_eos']}. Greedy generation stopped on {m['stopped']} of "
        f"{m['prompts']} prompts within {p.max_new_tokens} tokens (required {p.min_stop_rate:.0%}). "
    )
    text += f"Failing: {', '.join(bad)}." if bad else "No drift."
    return GateResult(
        name=ctx.name,
        verdict="fail" if bad else "pass",
        metric="chat-template copies that differ from training",
        required=ctx.required,
        baseline=0,
        candidate=len(drifted),
        delta=len(drifted),
        threshold=0,
        explanation=text,
        evidence=tuple(
            Example(id=f"conversation-{i}", prompt=c, note="renders to different token ids across copies")
            for i, c in enumerate(m["rendered_differ"][:3])
        ),
        details={**m, "checks": checks},
    )


@dataclass(frozen=True)
class RollbackParams:
    bundle: str | None = field(
        default=None,
        metadata={"path": True, "help": "bundle to check; built there when missing (default: in the cache)"},
    )
    data: str = field(default=PROMPTS, metadata={"path": True, "help": "probe prompts recorded in a new bundle"})
    max_prompts: int = field(default=8, metadata={"help": "prompts recorded"})
    max_new_tokens: int = field(default=32, metadata={"help": "greedy tokens recorded per prompt"})
    gguf_types: list[str] = field(default_factory=lambda: ["F16"], metadata={"help": "GGUFs put in a new bundle"})


def _rollback_requests(p: RollbackParams) -> list[MeasureRequest]:
    return [
        _req(
            "rollback",
            p.data,
            bundle=p.bundle or "",
            max_prompts=p.max_prompts,
            max_new_tokens=p.max_new_tokens,
            gguf_types=tuple(p.gguf_types),
        )
    ]


@gate("rollback", params=RollbackParams, requests=_rollback_requests)
def rollback(p: RollbackParams, ctx: GateContext) -> GateResult:
    """The release bundle reloads in a fresh process and reproduces its recorded greedy outputs exactly."""
    m = ctx.get(_rollback_requests(p)[0], "data")
    broken = m["missing"] + m["altered"]
    if broken:
        text = (
            f"Bundle {m['bundle']} does not match what was bundled: "
            + (f"missing {', '.join(m['missing'])}" if m["missing"] else "")
            + ("; " if m["missing"] and m["altered"] else "")
            + (f"altered {', '.join(m['altered'])}" if m["altered"] else "")
            + ". A rollback to it would not restore the gated model; rebuild it with `harness bundle`."
        )
        verdict = "fail"
    else:
        verdict = "pass" if m["recorded"] and m["reproduced"] == m["recorded"] else "fail"
        text = (
            f"Bundle {m['bundle']}: every file's sha256 matches; reloaded in a fresh process, the merged model "
            f"reproduced {m['reproduced']} of {m['recorded']} recorded greedy outputs exactly."
            + (f" Files added since bundling (ignored): {', '.join(m['unexpected'])}." if m["unexpected"] else "")
        )
    return GateResult(
        name=ctx.name,
        verdict=verdict,
        metric="recorded greedy outputs reproduced",
        required=ctx.required,
        baseline=float(m["recorded"]),
        candidate=float(m["reproduced"]),
        delta=float(m["reproduced"] - m["recorded"]),
        threshold=0.0,
        explanation=text,
        evidence=tuple(
            Example(
                id=f"prompt-{i}",
                prompt=d["prompt"],
                base_output=d["recorded"],
                candidate_output=d["now"],
                note="recorded at bundling vs reproduced now",
            )
            for i, d in enumerate(m["differing"])
        ),
        details=m,
        tables=_ships(("release bundle", f"`{m['bundle']}` ({m['reproduced']}/{m['recorded']} outputs reproduced)")),
    )


@dataclass(frozen=True)
class ServingParams:
    data: str = field(default=PROMPTS, metadata={"path": True, "help": "requests timed (first max_prompts)"})
    max_prompts: int = field(default=8, metadata={"help": "requests timed"})
    max_new_tokens: int = field(default=32, metadata={"help": "tokens generated per request (fixed)"})
    max_p95_latency_s: float | None = field(default=None, metadata={"help": "budget: p95 latency per request"})
    max_p50_latency_s: float | None = field(default=None, metadata={"help": "budget: median latency per request"})
    min_tokens_per_s: float | None = field(default=None, metadata={"help": "budget: generation tokens/s at least"})
    max_peak_memory_mb: float | None = field(default=None, metadata={"help": "budget: peak RSS (or GPU) memory"})
    max_adapter_mb: float | None = field(default=None, metadata={"help": "budget: adapter size on disk"})
    usd_per_hour: float | None = field(
        default=None,
        metadata={"help": "price of the serving hardware per hour: cost per million generated tokens is shown"},
    )
    max_usd_per_million_tokens: float | None = field(
        default=None, metadata={"help": "budget: cost per million generated tokens of the merged model (usd_per_hour)"}
    )
    compare: bool = field(
        default=True, metadata={"help": "also time the base and the unmerged candidate (base + adapter), beside it"}
    )

    def __post_init__(self) -> None:
        problems = []
        if self.usd_per_hour is not None and self.usd_per_hour <= 0:
            problems.append(("usd_per_hour", "must be positive, e.g. 1.2 (USD per hour of the serving machine)"))
        if self.max_usd_per_million_tokens is not None and self.usd_per_hour is None:
            problems.append(("max_usd_per_million_tokens", "needs usd_per_hour: the price the cost is computed from"))
        if problems:
            raise ValueError(problems)


def _serving_requests(p: ServingParams) -> list[MeasureRequest]:
    opts = {"max_prompts": p.max_prompts, "max_new_tokens": p.max_new_tokens}
    return [_req("serving", p.data, **opts, **({"compare": True} if p.compare else {}))]


def usd_per_million(tokens_per_s: float, usd_per_hour: float | None) -> float | None:
    """What a million generated tokens cost at this rate on hardware priced per hour (None without a price)."""
    if usd_per_hour is None or tokens_per_s <= 0:
        return None
    return usd_per_hour / (tokens_per_s * 3600) * 1e6


def _timing(m: dict) -> tuple[float, float, float, float]:
    lat = m["latencies_s"]
    tps = m["new_tokens"] / sum(lat) if sum(lat) else 0.0
    peak = m["peak_gpu_mb"] if m.get("peak_gpu_mb") is not None else m["peak_rss_mb"]
    return _quantile(lat, 0.5), _quantile(lat, 0.95), tps, peak


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@gate("serving", params=ServingParams, requests=_serving_requests)
def serving(p: ServingParams, ctx: GateContext) -> GateResult:
    """Latency p50/p95, tokens/s, peak memory and adapter size of the merged model within the budgets."""
    m = ctx.get(_serving_requests(p)[0], "data")
    lat = m["latencies_s"]
    p50, p95, tps, peak = _timing(m)
    cost = usd_per_million(tps, p.usd_per_hour)
    measured = {
        "p50 latency (s)": (p50, p.max_p50_latency_s, "<="),
        "p95 latency (s)": (p95, p.max_p95_latency_s, "<="),
        "tokens/s": (tps, p.min_tokens_per_s, ">="),
        "peak memory (MB)": (peak, p.max_peak_memory_mb, "<="),
        "adapter (MB)": (m["adapter_mb"], p.max_adapter_mb, "<="),
    }
    if cost is not None:
        measured["USD per million tokens"] = (cost, p.max_usd_per_million_tokens, "<=")
    checks = {k: v is None or (x <= v if op == "<=" else x >= v) for k, (x, v, op) in measured.items()}
    bad = [k for k, ok in checks.items() if not ok]
    parts = [f"{k} {x:.3g}" + (f" (budget {op} {v:g})" if v is not None else "") for k, (x, v, op) in measured.items()]
    text = (
        f"Merged model on {m['device']} ({m['dtype']}), {len(lat)} requests of {p.max_new_tokens} new tokens at "
        f"batch 1, in a fresh process: " + "; ".join(parts) + f"; merged weights {m['merged_mb']:.0f} MB. "
    )
    if not any(v is not None for _, v, _ in measured.values()):
        text += "No budget is configured, so nothing can fail: set max_p95_latency_s, min_tokens_per_s, ..."
    else:
        text += f"Over budget: {', '.join(bad)}." if bad else "Within every budget."
    rows = []
    for name, v in {**m.get("variants", {}), "merged": m}.items():
        v50, v95, vtps, vpeak = _timing(v)
        c = usd_per_million(vtps, p.usd_per_hour)
        rows.append((name, f"{v50:.3f}", f"{v95:.3f}", f"{vtps:.1f}", f"{vpeak:.0f}", "–" if c is None else f"{c:.2f}"))
    if p.usd_per_hour is not None:
        text += (
            f" Cost at {p.usd_per_hour:g} USD/hour: " + ", ".join(f"{r[0]} {r[5]}" for r in rows) + " USD per million "
            "generated tokens (batch 1: a batched server shares the hour among many requests, so this is the "
            "ceiling)."
        )
    tables = (
        Table(
            f"Serving cost, {len(lat)} requests of {p.max_new_tokens} tokens at batch 1"
            + (f", {p.usd_per_hour:g} USD/hour" if p.usd_per_hour is not None else ""),
            ("variant", "p50 latency (s)", "p95 latency (s)", "tokens/s", "peak memory (MB)", "USD per 1M tokens"),
            tuple(rows),
        ),
    )
    return GateResult(
        name=ctx.name,
        verdict="fail" if bad else "pass",
        metric="p95 latency per request (s)",
        required=ctx.required,
        candidate=round(p95, 4),
        threshold=p.max_p95_latency_s,
        explanation=text,
        details={
            **m,
            "p50_s": p50,
            "p95_s": p95,
            "tokens_per_s": tps,
            "peak_memory_mb": peak,
            "usd_per_million_tokens": cost,
            "checks": checks,
        },
        tables=tables
        + _ships(
            (
                "serving (merged)",
                f"p50 {p50:.3f} s, p95 {p95:.3f} s, {tps:.1f} tokens/s, peak {peak:.0f} MB, adapter "
                f"{m['adapter_mb']:.1f} MB" + ("" if cost is None else f", {cost:.2f} USD per million tokens"),
            )
        ),
    )
