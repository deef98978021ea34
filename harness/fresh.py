"""Run a harness module in a fresh Python process and read the one JSON line it prints last.

Used where nothing of this process may help or harm the measurement (peak memory, a reloaded bundle) or
where a crash must not take the harness down (llama.cpp)."""

from __future__ import annotations

import json
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


def run_module(module: str, *args: str, payload: Any = None, timeout: float = 1800) -> Fresh:
    """`python -m module *args [PAYLOAD.json]`: `payload`, when given, is written to a temporary JSON file
    whose path is passed as the last argument."""
    path = None
    if payload is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(payload, f)
        path = f.name
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args, *([path] if path else [])],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        if path:
            Path(path).unlink(missing_ok=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return Fresh(proc.returncode, json.loads(lines[-1]) if lines else None, proc.stderr)
