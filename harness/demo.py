"""`harness demo`: generate the triage data, train a LoRA on the embedded model, gate it, write the report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.console import console
from harness.errors import HarnessError
from harness.models import EMBEDDED_ALIAS

DEMO_CONFIG = """\
# Release config written by `harness demo`. Paths are relative to this file.
[model]
base = "{base}"
adapter = "adapter"

[run]
seed = 1234

[gates.perplexity]
# the fine-tune must fit held-out triage answers at least 5% better than its base (CI lower bound)
data = "data/eval.jsonl"
min_relative_improvement = 0.05
"""


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    config: Path
    report_dir: Path
    verdict: str


def new_run_dir(root: Path = Path("runs"), prefix: str = "demo") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, i = root / f"{prefix}-{stamp}", 1
    while path.exists():
        i += 1
        path = root / f"{prefix}-{stamp}-{i}"
    return path


def run_demo(out: Path | None = None, *, steps: int = 60, base: str = EMBEDDED_ALIAS) -> DemoResult:
    from fine_tune import LoraSFTConfig, train_lora_sft, write_demo_data
    from harness.data import load_dataset
    from harness.models import resolve_base
    from harness.pipeline import run
    from reports.console import print_summary

    out = Path(out) if out else new_run_dir()
    if out.exists() and any(out.iterdir()):
        raise HarnessError(
            "output directory is not empty", where=str(out), fix="choose a new --out directory (or omit it)"
        )
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    console.rule(f"harness demo -> {out}")
    paths = write_demo_data(out / "data")
    console.print(
        f"1/4 data: {', '.join(f'{k} {sum(1 for _ in open(p))}' for k, p in paths.items())} rows in {out / 'data'}"
    )
    base_model = resolve_base(base)
    console.print(f"2/4 base model: {base} ({base_model.dir})")
    result = train_lora_sft(
        base_model,
        load_dataset(paths["train"]),
        out / "adapter",
        LoraSFTConfig(max_steps=steps),
        valid=load_dataset(paths["valid"]),
    )
    console.print(
        f"3/4 trained LoRA r=16 for {result.steps} steps in {result.wall_time_s:.0f} s "
        f"({result.tokens_per_s:.0f} tokens/s); train loss {result.train_loss:.3f}, "
        f"validation loss {result.valid_loss:.3f}"
    )
    config = out / "release.toml"
    config.write_text(DEMO_CONFIG.format(base=base), encoding="utf-8")
    console.print(f"4/4 gating with {config}")
    gated = run(config, out / "report")
    print_summary(gated.report, gated.files)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; everything is in {out}")
    return DemoResult(out, config, out / "report", gated.report.verdict)
