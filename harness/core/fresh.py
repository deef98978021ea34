"""Run a harness module in a fresh Python process and read the one JSON line it prints last.

Used where nothing of this process may help or harm the measurement (peak memory, a reloaded bundle) or
where a crash must not take the harness down (llama.cpp)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fresh:
    returncode: int
    result: Any  # the last JSON line printed, or None
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, unlike ru_maxrss, which
    Linux carries over from the parent across fork + exec (it would report the harness's own peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_module(
    module: str, *args: str, payload: Any = None, timeout: float = 1800, show_progress: bool = False
) -> Fresh:
    """`python -m module *args [PAYLOAD.json]`: `payload`, when given, is written to a temporary JSON file
    whose path is passed as the last argument. With `show_progress`, the child's stderr (its progress bars and
    errors) goes to this process's stderr instead of into `Fresh.stderr`."""
    path = None
    if payload is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(payload, f)
        path = f.name
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args, *([path] if path else [])],
            stdout=subprocess.PIPE,
            stderr=None if show_progress else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    finally:
        if path:
            Path(path).unlink(missing_ok=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return Fresh(proc.returncode, json.loads(lines[-1]) if lines else None, proc.stderr or "")
