"""The DPO stage's data: preference pairs read and checked row by row, split, and handed to TRL's `DPOTrainer` in
its conversational form (`prompt` messages, `chosen` / `rejected` as one assistant message each).

The loss, the reference policy's log-probabilities and the metrics (rewards/chosen, rewards/rejected,
rewards/margins, rewards/accuracies) are TRL's own; nothing here computes a loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fine_tune.datasets import Split, refuse_eval_sets, split_train_valid
from fine_tune.preflight import preflight_dpo
from fine_tune.spec import FineTuneSpec
from harness.core.data import Dataset
from harness.core.pairs import PreferencePair, load_pairs


def trl_row(p: PreferencePair) -> dict[str, Any]:
    """One pair in TRL's explicit-prompt conversational form."""
    return {
        "prompt": [dict(m) for m in p.prompt],
        "chosen": [{"role": "assistant", "content": p.chosen}],
        "rejected": [{"role": "assistant", "content": p.rejected}],
    }


def dpo_data(spec: FineTuneSpec, tok: Any, eval_sets: list[str], base_dir: Path | None) -> dict[str, Any]:
    """What `train_stage` reads for a DPO stage (the keys the SFT and CPT stages' data has): every row checked
    (missing field, chosen == rejected: `load_pairs`; a prompt that leaves no room for an answer: the preflight),
    the eval sets refused, a validation split held out as for SFT."""
    src = spec.data_for("dpo")
    key = "[fine_tune] dpo_data" if spec.dpo_data else "[fine_tune] train"
    pairs = load_pairs(src or "", base_dir, key=key)
    # the pairs as rows of a data set: the SFT stage's eval-set refusal and validation split (whole `source`s held
    # out when rows name one) read only the path, the hash and each row's meta
    rows = Dataset(pairs.path, pairs.name, pairs.sha256, pairs.pairs)  # type: ignore[arg-type]
    refuse_eval_sets(rows, eval_sets, base_dir)
    if spec.valid_fraction == 0:
        split = Split(rows.records, (), "none", spec.seed)
    else:
        split = split_train_valid(rows, spec.valid_fraction, spec.seed)
    preflight_dpo(list(pairs.pairs), tok, spec.max_length, str(pairs.path))
    return {
        "dataset": pairs,
        "split": split,
        "sample": [],  # no train sample: DPO's validation loss is the preference loss, not a token loss
        "row_tasks": {},
        "train_rows": [trl_row(p) for p in split.train],
        "valid_rows": [trl_row(p) for p in split.valid],
        "sample_rows": [],
    }
