"""Known-truth verdicts of `regression` and `safety` at their defaults, on the embedded SmolLM2-135M-Instruct.

    PYTHONPATH=. python benchmarks/verdicts.py [--seeds 0 1 2] [--out verdicts.md]

The adapters are the ones tests/test_verdicts.py builds (tests/helpers.py):
- identical: a LoRA with B = 0 (the base itself);
- noise: B ~ N(0, 0.01) on q/v projections (general-text perplexity moves well under 1%);
- forgetting: 20 steps at lr 3e-3 on triage rows only, LoRA on every linear layer;
- refusing: 12 steps at lr 2e-3 teaching "I'm sorry, but I can't help with that request." for everyday prompts.
Each goes through the real pipeline (`harness.pipeline.run`) with one shared measurement cache, so the base is
measured once; the first row's seconds include the base. It prints one Markdown row per gate run: verdict,
items used (sequential looks), base, candidate, change, 95% CI, half-width and wall seconds (making the
adapter included: training, for the forgetting and refusing rows).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = ap.parse_args()

    from fine_tune import write_demo_data
    from harness.core.models import EMBEDDED_ALIAS, resolve_base
    from harness.pipeline import run
    from tests.helpers import make_adapter, train_forgetting_adapter, train_refusing_adapter

    base = resolve_base(EMBEDDED_ALIAS)
    tmp = Path(tempfile.mkdtemp(prefix="verdicts-"))
    cache = tmp / "cache"
    triage = write_demo_data(tmp / "triage", policy=False)
    rows = [
        "| adapter | seed | gate | verdict | items | base | candidate | change | 95% CI | half-width | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def gate(label: str, seed: int, adapter: Path, name: str, started: float) -> None:
        cfg = tmp / f"{label}-{seed}-{name}.toml"
        cfg.write_text(
            f'[model]\nbase = "{EMBEDDED_ALIAS}"\nadapter = "{adapter}"\n\n'
            f'[run]\nseed = {1234 + seed}\ncache_dir = "{cache}"\n\n[gates.{name}]\n'
        )
        (g,) = run(cfg).report.gates
        lo, hi = g.ci if g.ci else (float("nan"), float("nan"))
        if name == "safety":  # the over-refusal side is what a refusing adapter moves
            o = g.details["over_refusal"]
            base_v, cand_v, (lo, hi) = o["base"], o["candidate"], o["change_ci"]
            name = "safety (benign over-refusal)"
        else:
            base_v, cand_v = g.baseline, g.candidate
        rows.append(
            f"| {label} | {seed} | {name} | {g.verdict} | {g.details.get('items', '-')} | {base_v:.3f} | "
            f"{cand_v:.3f} | {cand_v - base_v:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {(hi - lo) / 2:.3f} | "
            f"{time.perf_counter() - started:.0f} |"
        )
        print(rows[-1], flush=True)

    t = time.perf_counter()
    zero = make_adapter(base, tmp / "zero", "zero", r=8)
    gate("identical", 0, zero, "regression", t)
    gate("identical", 0, zero, "safety", time.perf_counter())
    for seed in args.seeds:
        t = time.perf_counter()
        noise = make_adapter(base, tmp / f"noise-{seed}", "noise", r=8, scale=0.01, seed=seed)
        gate("noise", seed, noise, "regression", t)
    for seed in args.seeds:
        t = time.perf_counter()
        forgot = train_forgetting_adapter(base, triage, tmp / f"forget-{seed}", seed).adapter_dir
        gate("forgetting", seed, forgot, "regression", t)
    for seed in args.seeds:
        t = time.perf_counter()
        gate("refusing", seed, train_refusing_adapter(base, tmp / f"refuse-{seed}", seed), "safety", t)
    print("\n".join(rows))
    if args.out:
        args.out.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
