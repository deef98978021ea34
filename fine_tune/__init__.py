"""The fine-tune runner: CPT and LoRA/QLoRA SFT on TRL, its data handling and preflight, the demo data."""

from fine_tune.demo.triage import CATEGORIES, SEVERITIES, TEMPLATES, TriageItem, demo_splits, generate, write_demo_data
from fine_tune.spec import FineTuneSpec

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "TEMPLATES",
    "FineTuneSpec",
    "StageResult",
    "TrainOutcome",
    "TriageItem",
    "demo_splits",
    "generate",
    "train",
    "write_demo_data",
]


def __getattr__(name: str):
    # the runner imports transformers: load it only when asked for
    if name in ("train", "TrainOutcome", "StageResult"):
        from fine_tune import runner

        return getattr(runner, name)
    raise AttributeError(name)
