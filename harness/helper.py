"""A helper process of a run with `[run] workers` > 1 (`harness.workers`): measures the variants' cached
measurements of the config's plan into the run's cache, following the same looks, and exits.

    python -m harness.helper CONFIG --cache DIR
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.config import load_config
from harness.core.cache import MeasurementCache
from harness.pipeline import Measurer, make_plan, measure_and_decide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.helper")
    ap.add_argument("config")
    ap.add_argument("--cache", required=True)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    cfg = load_config(a.config)
    pl = make_plan(cfg, preflight=False)
    measurer = Measurer(pl, MeasurementCache(Path(a.cache)), None)
    try:
        measure_and_decide(cfg, pl, measurer, variants_only=True)
    finally:
        measurer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
