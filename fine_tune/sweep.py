"""`harness sweep --r 8,16,32`: one adapter per LoRA rank on the same data and seed, side by side.

The scale alpha/r is kept at the config's ratio, so ranks differ in capacity, not in step size.
Domain PPL is measured on the config's perplexity-gate data (else the validation file), with the
same measurement the gate uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.console import console
from harness.errors import HarnessError
from harness.files import atomic_write_text


@dataclass(frozen=True)
class SweepRow:
    r: int
    trainable_params: int
    wall_time_s: float
    valid_loss: float | None
    domain_ppl: float
    adapter_dir: Path


def _ppl(base: Any, adapter: Path | None, data: Any) -> float:
    from harness.models import check_adapter
    from harness.runtime.load import Runtimes
    from probes.perplexity import nll

    info = check_adapter(adapter, base) if adapter is not None else None
    rt = Runtimes(base, info).get("candidate" if info else "base")
    return nll(rt, data, description=f"PPL {adapter.parent.parent.name if adapter else 'base'}").perplexity


def render_table(rows: list[SweepRow], base_ppl: float, data_name: str) -> str:
    lines = [
        f"# LoRA rank sweep (domain PPL on `{data_name}`; base PPL {base_ppl:.4f})",
        "",
        "| r | trainable params | wall time (s) | final val loss | domain PPL |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        val = f"{row.valid_loss:.4f}" if row.valid_loss is not None else "–"
        lines.append(f"| {row.r} | {row.trainable_params:,} | {row.wall_time_s:.1f} | {val} | {row.domain_ppl:.4f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[SweepRow], base_ppl: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = [str(r.r) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5), dpi=100)
    axes[0].bar(ranks, [r.valid_loss or 0 for r in rows])
    axes[0].set_title("final validation loss")
    axes[1].bar(ranks, [r.domain_ppl for r in rows])
    axes[1].axhline(base_ppl, color="gray", ls="--", label="base")
    axes[1].set_title("domain PPL")
    axes[1].legend()
    axes[2].bar(ranks, [r.wall_time_s for r in rows])
    axes[2].set_title("wall time (s)")
    for ax in axes:
        ax.set_xlabel("LoRA rank r")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sweep(cfg: Any, ranks: list[int], out: Path) -> tuple[Path, Path, list[SweepRow]]:
    from fine_tune.runner import train
    from harness.data import load_dataset
    from harness.models import resolve_base

    spec = cfg.fine_tune
    if not ranks or any(r < 1 for r in ranks):
        raise HarnessError(f"ranks must be positive integers, got {ranks}", where="--r", fix="e.g. --r 8,16,32")
    if out.exists() and any(out.iterdir()):
        raise HarnessError("output directory is not empty", where=str(out), fix="choose a new --out")
    ppl_gate = cfg.gate("perplexity")
    data_spec = ppl_gate.params.data if ppl_gate else spec.valid
    if not data_spec:
        raise HarnessError(
            "no data to measure domain PPL on",
            where=str(cfg.path),
            fix="add [gates.perplexity] data = ... or [fine_tune] valid = ...",
        )
    data = load_dataset(data_spec, cfg.base_dir)
    base = resolve_base(spec.base or cfg.model.base, cfg.base_dir)
    base_ppl = _ppl(base, None, data)
    rows = []
    for r in ranks:
        alpha = max(1, round(spec.alpha * r / spec.r))
        console.rule(f"rank {r} (alpha {alpha})")
        run_spec = dataclasses.replace(spec, r=r, alpha=alpha)
        outcome = train(
            run_spec, base, out / f"r{r}", eval_sets=list(spec.eval) + cfg.eval_data(), base_dir=cfg.base_dir
        )
        s = outcome.stages[-1]
        rows.append(
            SweepRow(
                r,
                s.trainable_params,
                sum(x.wall_time_s for x in outcome.stages),
                s.valid_loss,
                _ppl(base, outcome.adapter_dir, data),
                outcome.adapter_dir,
            )
        )
    md = out / "sweep.md"
    atomic_write_text(md, render_table(rows, base_ppl, data.name))
    png = plot(rows, base_ppl, out / "sweep.png")
    return md, png, rows
