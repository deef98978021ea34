"""Why `make test` runs two pytest workers with one torch thread each: the same real-model work (greedy answers of
the embedded SmolLM2-135M to the general suite, batch 16) done by one process with two threads, then by two processes
with one thread each at the same time, on this machine's two cores.

    python benchmarks/worker_threads.py [--prompts 32] [--max-new-tokens 48]

Prints each side's wall time and the ratio of work done per second (two workers / one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORK = """
import sys
from harness.core.models import EMBEDDED_ALIAS, resolve_base
from harness.core.runtime import GenParams
from harness.core.runtime.load import Runtimes
from probes.suites import load_suite
prompts, tokens = int(sys.argv[1]), int(sys.argv[2])
rt = Runtimes(resolve_base(EMBEDDED_ALIAS), None, dtype="float32").get("base")
convs = [list(i.messages) for i in load_suite("builtin:general").items][:prompts]
rt.generate(convs[:2], GenParams(max_new_tokens=4))  # warm-up: the model is loaded before the clock starts
print("ready", flush=True)
sys.stdin.readline()
rt.generate(convs, GenParams(max_new_tokens=tokens), batch_size=16)
print("done", flush=True)
"""


def _timed(n: int, threads: int, prompts: int, tokens: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HARNESS_QUIET": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORK, str(prompts), str(tokens)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.stdout.readline().strip() == "done"
        p.wait()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    a = ap.parse_args()
    one = _timed(1, 2, a.prompts, a.max_new_tokens)
    two = _timed(2, 1, a.prompts, a.max_new_tokens)
    print(f"one process, 2 threads:          {one:6.1f} s for 1 unit of work")
    print(f"two processes, 1 thread each:    {two:6.1f} s for 2 units")
    print(f"work per second, two / one:      {2 * one / two:6.2f}x")


if __name__ == "__main__":
    main()
