"""A helper process of a run with `[run] workers` > 1 (`harness.workers`): measures the variants' cached
measurements of the config's plan into the run's cache, following the same looks, and exits.

    python -m harness.helper CONFIG --cache DIR [--reference-only]

`--reference-only`: the reference's measurements alone (the first look of each gate), while the candidate is still
being trained (`harness.workers.measuring_reference`): the config's candidate is taken to be its reference, so every
measurement lands under the reference's own cache key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from harness.config import load_config
from harness.core.cache import MeasurementCache
from harness.pipeline import Measurer, make_plan, measure_and_decide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.helper")
    ap.add_argument("config")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--reference-only", action="store_true")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    cfg = load_config(a.config)
    if a.reference_only:  # the candidate may not exist yet: measure the reference as both variants (one key)
        model = dataclasses.replace(cfg.model, adapter=None, candidate=cfg.model.reference)
        cfg = dataclasses.replace(cfg, model=model, fine_tune=None)
    pl = make_plan(cfg, preflight=False, reference_only=a.reference_only)
    measurer = Measurer(pl, MeasurementCache(Path(a.cache)), None)
    # one line a measurement on stderr: HARNESS_HELPER_LOG keeps them (where the helper's time went)
    measurer.on_measured = lambda r: print(f"helper {os.getpid()}: {json.dumps(r)}", file=sys.stderr, flush=True)
    try:
        measure_and_decide(cfg, pl, measurer, variants_only=True)
    finally:
        measurer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
