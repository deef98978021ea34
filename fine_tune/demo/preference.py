"""Preference pairs for the triage job (`harness demo --dpo`): the correct JSON answer chosen over a plausible wrong
one. The wrong answers are the mistakes a triage model makes: a neighbouring severity, another category, the right
labels in prose instead of the requested JSON, a field left out.

The DPO pairs are the demo's training reports (each with one kind of mistake, in turn); the held-out pairs are its
eval reports, each with every kind of mistake. So the held-out reports are as new to DPO as they are to SFT (they
repeat no training report's (system, symptom) or (symptom, impact) pair: `demo_splits`), and the contamination gate
finds nothing to flag."""

from __future__ import annotations

import json
import random
from pathlib import Path

from fine_tune.demo.triage import CATEGORIES, SEVERITIES, TriageItem, demo_splits

SEED = 5
MISTAKES = ("severity", "category", "prose", "missing")


def wrong_answer(item: TriageItem, mistake: str, rng: random.Random) -> str:
    """A plausible wrong answer to `item` of the given kind."""
    if mistake == "severity":  # one step off: the usual misjudgement
        i = SEVERITIES.index(item.severity)
        j = i + rng.choice([-1, 1]) if 0 < i < len(SEVERITIES) - 1 else (1 if i == 0 else i - 1)
        return json.dumps({"severity": SEVERITIES[j], "category": item.category})
    if mistake == "category":
        other = rng.choice([c for c in CATEGORIES if c != item.category])
        return json.dumps({"severity": item.severity, "category": other})
    if mistake == "prose":  # the right labels, not in the requested form
        return f"This looks like a {item.severity} severity {item.category} incident."
    return json.dumps({"severity": item.severity})  # missing: the category left out


def pair_row(item: TriageItem, mistake: str, rng: random.Random, suffix: str = "") -> dict:
    return {
        "id": item.id + suffix,
        "prompt": [{"role": "user", "content": item.prompt}],
        "chosen": item.answer,
        "rejected": wrong_answer(item, mistake, rng),
        "mistake": mistake,
    }


def preference_pairs(n_train: int = 240, n_eval: int = 40) -> dict[str, list[dict]]:
    """DPO pairs (one a training report) and held-out pairs (four an eval report: `4 * n_eval`), seeded."""
    splits = demo_splits(n_train=n_train, n_eval=n_eval)
    rng = random.Random(SEED)
    train = [pair_row(it, MISTAKES[i % len(MISTAKES)], rng) for i, it in enumerate(splits["train"])]
    held = [pair_row(it, m, rng, f"-{m}") for it in splits["eval"] for m in MISTAKES]
    return {"train": train, "eval": held}


def write_preference_data(out_dir: Path, **sizes: int) -> dict[str, Path]:
    """`dpo_train.jsonl` (the DPO stage's pairs) and `preference_eval.jsonl` (the preference gate's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in preference_pairs(**sizes).items():
        name = "dpo_train" if split == "train" else "preference_eval"
        paths[name] = out_dir / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return paths
