"""`[run] workers`: helper processes that measure beside the run, on a CPU.

One process with two torch threads gets less done on two cores than two processes with one thread each
(`benchmarks/worker_threads.py`: 1.45x). With `workers = N` (N > 1), the in-process `hf` backend on a CPU, and a
config file, a run starts N - 1 helpers (`python -m harness.helper CONFIG --cache DIR`), each with its share of the
cores, and measures with its own share. Every process works through the same plan; the measurement cache's claims
(`harness.core.cache`) hand each measurement to one of them, and the run reads what a helper made from the cache.
A helper measures only the variants' cached measurements (answers, log-likelihoods: no side effects, no files),
decides nothing and reports nothing: the run stays the one authority, and a helper that fails or is slow only
costs time (the run measures whatever is left). Helpers are stopped when the run's measuring ends, and before
anything is timed (the serving gate's latency is measured last, with this process alone).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.console import console


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def why_not(cfg: Any) -> str | None:
    """Why this run measures alone although `workers` > 1 (None: helpers can start)."""
    import torch

    if cfg.model.backend != "hf":
        return f"the {cfg.model.backend} backend batches on its own"
    if cfg.model.device not in ("auto", "cpu") or (cfg.model.device == "auto" and torch.cuda.is_available()):
        return "the model runs on a GPU (one process per GPU)"
    if cfg.path is None or not Path(cfg.path).is_file():
        return "the config is not a file a helper can read"
    return None


class Helpers:
    """The helper processes of one run; `stop()` ends them (idempotent) and gives this process every core back."""

    def __init__(self, procs: list[subprocess.Popen[Any]], threads: int | None = None):
        self.procs, self.started, self._threads = procs, len(procs), threads

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
            self._threads = None


@contextlib.contextmanager
def helping(cfg: Any, cache_root: Path) -> Iterator[Helpers]:
    """Run the body with `cfg.run.workers - 1` helper processes measuring into `cache_root`. This process
    measures with its share of the cores meanwhile; `Helpers.stop()` ends them early (before timing anything)."""
    n = cfg.run.workers
    if n <= 1:
        yield Helpers([])
        return
    reason = why_not(cfg)
    if reason:
        console.print(f"[yellow]note[/]: [run] workers = {n} is ignored: {reason}; measuring in this process")
        yield Helpers([])
        return
    import torch

    share = max(1, cores() // n)
    env = {**os.environ, "OMP_NUM_THREADS": str(share), "MKL_NUM_THREADS": str(share)}
    cmd = [sys.executable, "-m", "harness.helper", str(cfg.path), "--cache", str(cache_root)]
    helpers = Helpers([], torch.get_num_threads())
    try:
        with _log() as err:  # the children hold their own copy of the file
            for _ in range(n - 1):
                helpers.procs.append(
                    subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                )
        helpers.started = len(helpers.procs)
        torch.set_num_threads(share)
        console.print(f"measuring in {n} processes ({share} torch thread{'s' * (share > 1)} each)")
        yield helpers
    finally:
        helpers.stop()


@contextlib.contextmanager
def measuring_reference(cfg: Any, cache_root: Path) -> Iterator[None]:
    """While the body trains the candidate (`harness demo`), one helper process measures the reference's cached
    measurements into `cache_root` with one torch thread (`python -m harness.helper CONFIG --cache DIR
    --reference-only`); the gate run that follows finds them there. Stopped when the body ends: a measurement it
    had not finished is made again by the run. Only where `[run] workers` > 1 would start helpers."""
    reason = why_not(cfg) if cfg.run.workers > 1 else "workers = 1"
    if reason:
        yield
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "harness.helper", str(cfg.path), "--cache", str(cache_root), "--reference-only"]
    with _log() as err:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    helpers = Helpers([proc])
    console.print(f"measuring the {cfg.model.reference} beside the training (one helper process)")
    try:
        yield
    finally:
        helpers.stop()


def _log() -> Any:
    """Where a helper's stderr goes: nowhere, unless HARNESS_HELPER_LOG names a file (debugging a helper)."""
    path = os.environ.get("HARNESS_HELPER_LOG")
    return open(path, "ab") if path else open(os.devnull, "wb")
