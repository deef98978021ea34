"""The fine-tune runner: demo data and LoRA SFT (QLoRA, CPT, merge and GGUF export follow)."""

from fine_tune.demo_data import CATEGORIES, SEVERITIES, TEMPLATES, TriageItem, demo_splits, generate, write_demo_data
from fine_tune.sft import LoraSFTConfig, TrainResult, chat_rows, train_lora_sft

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "TEMPLATES",
    "LoraSFTConfig",
    "TrainResult",
    "TriageItem",
    "chat_rows",
    "demo_splits",
    "generate",
    "train_lora_sft",
    "write_demo_data",
]
