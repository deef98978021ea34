"""How batch size changes the `hf` runtime's greedy generation on CPU: the embedded SmolLM2-135M answers the general
suite (the regression gate's default work) at several batch sizes, one torch thread (as each `make test` worker
runs), and the answers are compared with batch 16's.

    OMP_NUM_THREADS=1 python benchmarks/generation_batch.py [--suite builtin:general] [--prompts 64]
        [--max-new-tokens 48] [--sizes 8,16,32,64]

Prints the wall time of each batch size, prompts per second, and the share of answers identical to batch 16's
(left padding changes the numbers a little, so a few greedy answers may differ).
"""

from __future__ import annotations

import argparse
import time

from harness.core.models import EMBEDDED_ALIAS, resolve_base
from harness.core.runtime import GenParams
from harness.core.runtime.load import Runtimes
from probes.suites import load_suite


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="builtin:general")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--sizes", default="8,16,32,64")
    a = ap.parse_args()
    rt = Runtimes(resolve_base(EMBEDDED_ALIAS), None, dtype="float32").get("base")
    convs = [list(i.messages) for i in load_suite(a.suite).items][: a.prompts]
    params = GenParams(max_new_tokens=a.max_new_tokens)
    rt.generate(convs[:2], GenParams(max_new_tokens=4))  # warm-up
    answers: dict[int, list[str]] = {}
    print(f"{'batch':>5} {'wall s':>8} {'prompts/s':>10} {'same as 16':>11}")
    sizes = [int(s) for s in a.sizes.split(",")]
    for size in sorted(sizes, key=lambda s: s != 16):  # 16 first: the others are compared with it
        start = time.perf_counter()
        out = rt.generate(convs, params, batch_size=size)
        wall = time.perf_counter() - start
        answers[size] = [c[0].text for c in out]
        same = sum(x == y for x, y in zip(answers[size], answers[16], strict=True)) / len(convs)
        print(f"{size:>5} {wall:>8.1f} {len(convs) / wall:>10.2f} {same:>11.0%}", flush=True)


if __name__ == "__main__":
    main()
