"""Where the harness keeps things: the user cache (converted models, measurements)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/harness`, else `~/.cache/harness`."""
    if env := os.environ.get("HARNESS_CACHE_DIR"):
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness"
    root.mkdir(parents=True, exist_ok=True)
    return root
