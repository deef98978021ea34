"""Release gates for LoRA/QLoRA fine-tunes: `harness.run(config)` measures base and candidate side by side,
decides every configured gate and writes a Markdown/JSON/JUnit report.

Importing `harness` is cheap: torch and transformers load only when a model must actually run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.core.errors import EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_INTERNAL, EXIT_PASS, ConfigError, HarnessError

if TYPE_CHECKING:
    from harness.config import ReleaseConfig, load_config
    from harness.pipeline import RunResult, run

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BLOCKED",
    "EXIT_INTERNAL",
    "EXIT_PASS",
    "ConfigError",
    "HarnessError",
    "ReleaseConfig",
    "RunResult",
    "load_config",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in ("run", "RunResult"):
        from harness import pipeline

        return getattr(pipeline, name)
    if name in ("load_config", "ReleaseConfig"):
        from harness import config

        return getattr(config, name)
    raise AttributeError(name)
