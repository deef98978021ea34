"""Time `harness gate` twice on unchanged inputs: the second run must be served from the cache.

    python benchmarks/rerun_cache.py runs/demo-YYYYmmdd-HHMMSS

Uses the demo's adapter and eval data with a fresh, temporary measurement cache, so the first run
measures base and candidate for real and the second finds everything cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(demo_dir: str) -> None:
    demo = Path(demo_dir).resolve()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    cfg = work / "release.toml"
    adapter = demo / "train" / "sft" / "adapter"  # a `harness demo` folder
    adapter = adapter if adapter.is_dir() else demo / "adapter"
    cfg.write_text(
        f'[model]\nbase = "smollm2-135m-instruct"\nadapter = "{adapter}"\n\n'
        f'[run]\ncache_dir = "{work / "cache"}"\n\n'
        f'[gates.perplexity]\ndata = "{demo / "data" / "eval.jsonl"}"\nmin_relative_improvement = 0.05\n'
    )
    harness = Path(sys.executable).parent / "harness"
    env = {**os.environ, "HARNESS_QUIET": "1"}
    times = []
    for name in ("first", "second"):
        t0 = time.perf_counter()
        proc = subprocess.run([str(harness), "gate", "--config", str(cfg), "--out", str(work / name)], env=env)
        times.append(time.perf_counter() - t0)
        report = json.loads((work / name / "report.json").read_text())
        cache = report["manifest"]["cache"]
        print(
            f"{name} run: {times[-1]:.2f} s, exit {proc.returncode}, cache {cache['hits']} hits / "
            f"{cache['misses']} misses, verdict {report['verdict']}"
        )
    print(f"second / first = {times[1] / times[0]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
