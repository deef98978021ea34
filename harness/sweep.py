"""`harness sweep --r 8,16,32`: one adapter per LoRA rank on the same data and seed, each gated, side by side.

The scale alpha/r is kept at the config's ratio, so ranks differ in capacity, not in step size. Each rank trains
in a fresh process, so its peak memory is that training's (peak RSS; on a GPU, peak allocated CUDA memory), not
what this process held before. Each adapter is then gated with the config's quality gates (the target gates
`perplexity`, `pass_at_k`, `judge`, `calibration`, and `regression`; `--gates` picks others), through the one
pipeline, into `OUT/rN/gate/report.md`; the base's measurements are cached, so only the adapters are measured
again. `sweep.md` ranks the ranks: the smallest that passes every gate first.

    python -m harness.sweep TRAIN.json     (the child: trains one rank, prints its peak memory as JSON)
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tune.runner import StageResult, refuse_disallowed_training_data, train
from fine_tune.spec import FineTuneSpec
from harness.config import ModelSpec
from harness.core.console import console, quiet_hf_progress
from harness.core.errors import HarnessError
from harness.core.files import atomic_write_text
from harness.core.fresh import peak_rss_mb, run_module
from harness.core.models import resolve_base
from harness.core.tracking import require as require_tracker

TARGET_GATES = ("perplexity", "pass_at_k", "judge", "calibration")  # what the fine-tune is for
SWEEP_GATES = (*TARGET_GATES, "regression")  # what a rank can change; release engineering gates the pick later


@dataclass(frozen=True)
class SweepRow:
    r: int
    trainable_params: int
    wall_time_s: float
    valid_loss: float | None
    peak_memory_mb: float  # the training process's peak (GPU: peak allocated CUDA memory; else peak RSS)
    memory_kind: str  # "rss" | "cuda"
    adapter_dir: Path
    verdict: str  # the release verdict over the sweep's gates
    gates: dict[str, str]  # gate -> verdict
    deltas: dict[str, float | None]  # gate -> its decided change, candidate - base (in its metric's unit)
    report: Path


def sweep_gates(cfg: Any, names: list[str] | None) -> tuple[str, ...]:
    """The gates each rank is decided by: `names`, or the config's quality gates; a target gate and `regression`
    must be among them (a rank that learns the task by forgetting everything else is no pick)."""
    configured = [g.name for g in cfg.gates]
    where = f"{cfg.path} [gates]" if cfg.path else "[gates]"
    if names:
        unknown = [n for n in names if n not in configured]
        if unknown:
            fix = f"configure them as [gates.NAME] or pick from {', '.join(configured) or 'none'}"
            raise HarnessError(f"--gates names gates the config lacks: {', '.join(unknown)}", where=where, fix=fix)
        chosen = list(names)
    else:
        chosen = [n for n in configured if n in SWEEP_GATES]
    if not any(n in TARGET_GATES for n in chosen) or "regression" not in chosen:
        raise HarnessError(
            f"a sweep gates each rank on the target task and on regression; configured: {', '.join(chosen) or 'none'}",
            where=where,
            fix="add [gates.regression] and a target gate ([gates.perplexity], [gates.pass_at_k], [gates.judge] "
            "or [gates.calibration]) to the config",
        )
    return tuple(chosen)


def rank_config(cfg: Any, adapter: Path, gates: tuple[str, ...]) -> Any:
    """The release config of one rank: its adapter as the candidate, the sweep's gates only."""

    model = cfg.model or ModelSpec(base=cfg.fine_tune.base)
    raw_model = {k: v for k, v in cfg.raw.get("model", {}).items() if k != "candidate"}  # the rank's adapter is
    raw = {**cfg.raw, "model": {**raw_model, "base": model.base, "adapter": str(adapter)}}  # the candidate now
    raw["gates"] = {k: v for k, v in cfg.raw.get("gates", {}).items() if k in gates}
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(model, adapter=str(adapter), candidate=None),
        gates=tuple(cfg.gate(n) for n in gates),
        raw=raw,
    )


def ranked(rows: list[SweepRow]) -> list[SweepRow]:
    """Passing ranks first, smallest first; then the others by rank."""
    return sorted(rows, key=lambda row: (row.verdict != "pass", row.r))


def _mb(row: SweepRow) -> str:
    return f"{row.peak_memory_mb:,.0f} ({'CUDA' if row.memory_kind == 'cuda' else 'RSS'})"


def render_table(rows: list[SweepRow], gates: tuple[str, ...], metrics: dict[str, str], root: Path) -> str:
    """sweep.md (in `root`): the pick, one row per rank in `ranked` order, and each gate's metric."""
    order = ranked(rows)
    passing = [row for row in order if row.verdict == "pass"]
    pick = (
        f"**Smallest rank that passes every gate: r = {passing[0].r}** (adapter `{passing[0].adapter_dir}`)."
        if passing
        else "**No rank passes every gate**: see each rank's report for the gate that blocks it."
    )
    lines = [
        f"# LoRA rank sweep, gated on {', '.join(f'`{g}`' for g in gates)}",
        "",
        pick,
        "",
        "| r | release | "
        + " | ".join(f"{g} (Δ)" for g in gates)
        + " | peak training memory (MB) | training wall time (s) | trainable params | final val loss | report |",
        "|---" * (len(gates) + 7) + "|",
    ]
    for row in order:
        cells = []
        for g in gates:
            value = row.deltas.get(g)
            number = f" ({value:+.4g})" if isinstance(value, int | float) else ""
            cells.append(f"{row.gates.get(g, '–')}{number}")
        val = f"{row.valid_loss:.4f}" if row.valid_loss is not None else "–"
        lines.append(
            f"| {row.r} | **{row.verdict}** | {' | '.join(cells)} | {_mb(row)} | {row.wall_time_s:.1f} | "
            f"{row.trainable_params:,} | {val} | [report]({os.path.relpath(row.report, root)}) |"
        )
    lines += ["", "Δ is the change each gate decided on (candidate - base):", ""]
    lines += [f"- `{g}`: {metrics[g]}" for g in gates if metrics.get(g)]
    lines += [
        "",
        "Peak memory is each training process's own (a fresh process per rank). Each gate's verdict and change "
        "are from that rank's report; the base's measurements are shared (cached).",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[SweepRow], path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: the process's backend (the user's) is never switched

    ranks = [str(r.r) for r in rows]
    colours = ["#2e7d32" if r.verdict == "pass" else "#c62828" for r in rows]
    fig = Figure(figsize=(11, 3.5), dpi=100)
    axes = fig.subplots(1, 3)
    axes[0].bar(ranks, [r.valid_loss or 0 for r in rows], color=colours)
    axes[0].set_title("final validation loss")
    axes[1].bar(ranks, [r.peak_memory_mb for r in rows], color=colours)
    axes[1].set_title("peak training memory (MB)")
    axes[2].bar(ranks, [r.wall_time_s for r in rows], color=colours)
    axes[2].set_title("training wall time (s)")
    for ax in axes:
        ax.set_xlabel("LoRA rank r")
    fig.suptitle("green: the rank passes every sweep gate; red: blocked", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _train_rank(payload: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: train one rank, then report the process's peak memory."""

    base_dir = Path(payload["base_dir"])
    base = resolve_base(payload["base"], base_dir, payload.get("revision"))
    spec = FineTuneSpec(**payload["spec"])
    outcome = train(spec, base, Path(payload["out"]), eval_sets=payload["eval_sets"], base_dir=base_dir)
    import torch

    cuda = torch.cuda.is_available()
    return {
        "adapter_dir": str(outcome.adapter_dir),
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def sweep(
    cfg: Any, ranks: list[int], out: Path, gates: list[str] | None = None, log_to: str = "none"
) -> tuple[Path, Path, list[SweepRow]]:
    """Train, gate and rank one adapter per rank into `out`; with `log_to`, each rank's gate metrics go to its
    own training run in that tracker (`harness.core.tracking`)."""
    from harness.pipeline import run

    spec = cfg.fine_tune
    if not ranks or any(r < 1 for r in ranks):
        raise HarnessError(f"ranks must be positive integers, got {ranks}", where="--r", fix="e.g. --r 8,16,32")
    if out.exists() and any(out.iterdir()):
        raise HarnessError("output directory is not empty", where=str(out), fix="choose a new --out")
    names = sweep_gates(cfg, gates)
    require_tracker(log_to, "--log-to")
    if cfg.model is not None and cfg.model.backend == "openai":
        raise HarnessError(
            "a sweep gates each rank's adapter in this process; a server serves one candidate",
            where=f"{cfg.path} [model] backend",
            fix='use backend = "hf" or "vllm" for the sweep, then gate the pick on the server',
        )
    refuse_disallowed_training_data(cfg)
    rows = []
    for r in ranks:
        alpha = max(1, round(spec.alpha * r / spec.r))
        console.rule(f"rank {r} (alpha {alpha}): training in a fresh process")
        payload = {
            "spec": dataclasses.asdict(dataclasses.replace(spec, r=r, alpha=alpha)),
            "base": spec.base or cfg.model.base,
            "revision": cfg.model.revision if cfg.model else None,
            "base_dir": str(cfg.base_dir),
            "out": str(out / f"r{r}"),
            "eval_sets": list(spec.eval) + cfg.eval_data(),
        }
        child = run_module("harness.sweep", payload=payload, timeout=24 * 3600, show_progress=True)
        if not child.ok:
            failed = f"training rank {r} failed (exit {child.returncode}; its error is printed above)"
            if child.returncode == 2:  # bad input, named by the child
                raise HarnessError(failed, where=str(out / f"r{r}"))
            raise RuntimeError(failed)
        adapter = Path(child.result["adapter_dir"])
        stages = [StageResult.from_manifest(d) for d in sorted((out / f"r{r}").iterdir()) if d.is_dir()]
        console.rule(f"rank {r}: gating {', '.join(names)}")
        result = run(rank_config(cfg, adapter, names), out / f"r{r}" / "gate", log_to=log_to)
        decided = {g.name: g for g in result.report.gates}
        cuda = child.result.get("peak_cuda_mb")
        rows.append(
            SweepRow(
                r=r,
                trainable_params=stages[-1].trainable_params,
                wall_time_s=sum(s.wall_time_s for s in stages),
                valid_loss=stages[-1].valid_loss,
                peak_memory_mb=cuda if cuda is not None else child.result["peak_rss_mb"],
                memory_kind="cuda" if cuda is not None else "rss",
                adapter_dir=adapter,
                verdict=result.report.verdict,
                gates={n: decided[n].verdict for n in names},
                deltas={n: decided[n].delta for n in names},
                report=result.files["markdown"],
            )
        )
    metrics = {n: g.metric for n, g in decided.items()}
    md = out / "sweep.md"
    atomic_write_text(md, render_table(rows, names, metrics, out))
    atomic_write_text(
        out / "sweep.json", json.dumps([dataclasses.asdict(row) for row in ranked(rows)], indent=2, default=str) + "\n"
    )
    png = plot(rows, out / "sweep.png")
    return md, png, rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quiet_hf_progress()
    try:
        result = _train_rank(json.loads(Path(args[0]).read_text()))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
