"""Which per-item score gives the regression gate the narrowest interval per second of compute?

    PYTHONPATH=. python benchmarks/regression_power.py [--greedy-items 64] [--sample-items 32] [--n 4] [--noise 0.01]

On the embedded SmolLM2-135M-Instruct, for a candidate that is the base plus a small-noise LoRA (B ~ N(0,
noise), on q/v projections), it scores `builtin:general` three ways, base and candidate, and times each:
- likelihood: per-token probability of the reference answer (one forward pass per item);
- greedy: one greedy answer per item, pass/fail;
- samples: `--n` answers per item at temperature 0.7, per-item pass rate.
Likelihood runs on the whole suite; greedy and samples on its first items (generation costs about a
second per answer on two CPU cores), which is enough for their sd and seconds per item. For each it prints
the paired sd of the per-item change, the 95% half-width on the items measured, the seconds per item
(base + candidate), and the half-width that one minute of compute would buy
(1.96 * sd * sqrt(seconds per item / 60)): the figure that picks the default.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--greedy-items", type=int, default=64, help="items answered greedily (generation is slow)")
    ap.add_argument("--sample-items", type=int, default=32, help="items sampled --n times each")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from gates.regression import reference_score
    from gates.stats import bootstrap_mean
    from harness.core.data import load_dataset
    from harness.core.models import (
        EMBEDDED_ALIAS,
        attach_adapter,
        check_adapter,
        load_base_model,
        load_tokenizer,
        resolve_base,
    )
    from harness.core.runtime import GenParams, HFRuntime
    from probes.perplexity import measure_nll
    from probes.sampling import run_suite
    from probes.suites import load_suite
    from tests.helpers import make_adapter

    torch.set_num_threads(2)
    base = resolve_base(EMBEDDED_ALIAS)
    tok = load_tokenizer(base.dir)
    suite = load_suite("builtin:general")
    data = load_dataset("builtin:general")
    suite_greedy = replace(suite, items=suite.items[: args.greedy_items])
    suite_few = replace(suite, items=suite.items[: args.sample_items])
    tmp = Path(tempfile.mkdtemp())
    adir = make_adapter(base, tmp / "noise", "noise", r=8, scale=args.noise, seed=args.seed)
    model = load_base_model(base, device="cpu", dtype="float32")
    peft = attach_adapter(model, check_adapter(adir, base))

    def run(variant: str, fn):
        t = time.perf_counter()
        if variant == "base":
            with peft.disable_adapter():
                out = fn(peft)
        else:
            out = fn(peft)
        return out, time.perf_counter() - t

    modes = {
        "likelihood": lambda m: reference_score(measure_nll(m, tok, data, batch_size=16).docs),
        "greedy": lambda m: np.array(
            [i.c / i.n for i in run_suite(HFRuntime(m, tok), suite_greedy, GenParams(n=1, max_new_tokens=48,
                                          seed=args.seed), description="greedy", batch_size=16).items]
        ),
        "samples": lambda m: np.array(
            [i.c / i.n for i in run_suite(HFRuntime(m, tok), suite_few, GenParams(n=args.n, temperature=0.7,
                                          max_new_tokens=48, seed=args.seed), description="samples",
                                          batch_size=16).items]
        ),
    }  # fmt: skip
    print(f"candidate: base + LoRA noise std {args.noise} (seed {args.seed}); suite builtin:general", flush=True)
    print(
        "| score | items | base | candidate | sd of change | 95% half-width | s/item (both) | half-width per minute |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name, fn in modes.items():
        b, tb = run("base", fn)
        c, tc = run("candidate", fn)
        d = c - b
        iv = bootstrap_mean(d, seed=0)
        sd = float(d.std(ddof=1))
        per = (tb + tc) / len(d)
        hw, hw60 = (iv.upper - iv.lower) / 2, 1.96 * sd * (per / 60) ** 0.5
        print(f"| {name} | {len(d)} | {b.mean():.3f} | {c.mean():.3f} | {sd:.4f} | {hw:.4f} | {per:.3f} | {hw60:.4f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
