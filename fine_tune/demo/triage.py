"""Synthetic incident-report triage: report text -> JSON with `severity` and `category`.

Seeded and reproducible byte for byte: the same seed gives the same file. Labels follow from the text
(the impact phrase sets severity, the symptom sets category), so answers are checkable. Six
instruction templates; train, validation and eval come from separate seeds, and eval items whose
(system, symptom) or (symptom, impact) pair occurs in train are dropped, so eval items are new combinations,
not near-copies of training reports. The written training file also carries policy rows
(refusals of out-of-policy requests and helpful answers to risky-sounding ones, `fine_tune.demo.safety`) and
general replay rows (`fine_tune.demo.general`); the validation file carries held-out rows of both in the same
proportions, so the validation loss and the runner's train-sample loss average over the same task mix.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fine_tune.demo.general import VALID_FACTS, VALID_FORMATS, generate_general
from fine_tune.demo.rows import chat_row
from fine_tune.demo.safety import generate_policy, generate_policy_valid

SEVERITIES = ("critical", "high", "medium", "low")
CATEGORIES = ("outage", "performance", "security", "data")
SEEDS = {"train": 1, "valid": 2, "eval": 3}

SYSTEMS = (
    "the payments API",
    "the login service",
    "the search cluster",
    "the reporting database",
    "the mobile app backend",
    "the email gateway",
    "the inventory service",
    "the CDN edge",
    "the order pipeline",
    "the customer portal",
    "the billing scheduler",
    "the message queue",
)
SYMPTOMS = {
    "outage": (
        "returns 503 errors for every request",
        "is completely down",
        "refuses all connections",
        "crashed and does not restart",
        "fails its health checks on every node",
    ),
    "performance": (
        "responds slowly, with p95 latency above 4 seconds",
        "times out intermittently under load",
        "has CPU pinned at 100 percent",
        "shows a request queue that keeps growing",
        "takes minutes to load pages that used to load in a second",
    ),
    "security": (
        "shows repeated failed admin logins from an unknown IP range",
        "exposed an access token in public logs",
        "has a new admin account nobody created",
        "flagged malware on one of its hosts",
        "is receiving requests with SQL injection payloads that succeeded",
    ),
    "data": (
        "lost records from the last nightly import",
        "shows duplicated rows in every report",
        "has corrupted entries after the schema migration",
        "failed checksum verification on its backups",
        "writes timestamps in the wrong time zone, mixing up records",
    ),
}
IMPACTS = {
    "critical": (
        "All customers are affected.",
        "Every region is affected and revenue is blocked.",
        "The whole company is affected.",
    ),
    "high": (
        "About half of our users are affected.",
        "A major region is affected.",
        "Most enterprise customers are affected.",
    ),
    "medium": (
        "A few internal teams are affected.",
        "Some users see it occasionally.",
        "One small customer segment is affected.",
    ),
    "low": (
        "Only a single test account is affected.",
        "Only the staging environment is affected.",
        "Nobody is affected yet; it was spotted in a dashboard.",
    ),
}
OPENERS = (
    "Reported by the on-call engineer at {t}.",
    "Alert fired at {t}.",
    "Ticket opened at {t} by support.",
    "Customer email received at {t}.",
    "Monitoring noticed this at {t}.",
)
TEMPLATES = (
    'Triage this incident report. Reply with JSON containing "severity" and "category".\n\nReport: {report}',
    "You are an on-call assistant. Classify the incident below.\nReturn only a JSON object with keys severity "
    "(critical|high|medium|low) and category (outage|performance|security|data).\n\n{report}",
    "Incident: {report}\n\nWhat are the severity and category? Answer as JSON.",
    'Read the following report and output a JSON object {{"severity": ..., "category": ...}}.\n---\n{report}\n---',
    "Classify severity and category for this ticket (JSON only):\n{report}",
    "{report}\n\nTriage the incident above: respond with JSON with the fields severity and category.",
)


@dataclass(frozen=True)
class TriageItem:
    id: str
    report: str
    template: int
    severity: str
    category: str

    @property
    def parts(self) -> tuple[str, str, str]:
        """(system, symptom, impact) of the report."""
        system = next(s for s in SYSTEMS if s[1:] in self.report)
        symptom = next(p for p in SYMPTOMS[self.category] if p in self.report)
        impact = next(p for p in IMPACTS[self.severity] if p in self.report)
        return system, symptom, impact

    @property
    def pairs(self) -> set[tuple[str, str]]:
        """(system, symptom) and (symptom, impact): the spans long enough to be a verbatim overlap. Eval and
        validation items repeat neither pair of any training item: they are new combinations, not near-copies."""
        system, symptom, impact = self.parts
        return {(system, symptom), (symptom, impact)}

    @property
    def prompt(self) -> str:
        return TEMPLATES[self.template].format(report=self.report)

    @property
    def answer(self) -> str:
        return json.dumps({"severity": self.severity, "category": self.category})

    def row(self) -> dict:
        """A TRL conversational prompt/completion row, plus the labels for checking."""
        return chat_row(
            self.id,
            self.prompt,
            self.answer,
            template=self.template,
            task="triage",
            severity=self.severity,
            category=self.category,
        )


def generate(n: int, seed: int, prefix: str = "triage") -> list[TriageItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        sev, cat = rng.choice(SEVERITIES), rng.choice(CATEGORIES)
        t = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        opener, system = rng.choice(OPENERS).format(t=t), rng.choice(SYSTEMS)
        report = f"{opener} {system[0].upper()}{system[1:]} {rng.choice(SYMPTOMS[cat])}. {rng.choice(IMPACTS[sev])}"
        items.append(TriageItem(f"{prefix}-{seed}-{i:04d}", report, rng.randrange(len(TEMPLATES)), sev, cat))
    return items


def demo_splits(n_train: int = 240, n_valid: int = 40, n_eval: int = 40) -> dict[str, list[TriageItem]]:
    """Train, validation and eval splits from separate seeds; eval and valid never repeat a training item's
    (system, symptom) or (symptom, impact) pair."""
    train = generate(n_train, SEEDS["train"], "train")
    seen = set().union(*(it.pairs for it in train))
    valid = [it for it in generate(n_valid * 20, SEEDS["valid"], "valid") if not it.pairs & seen][:n_valid]
    evals = [it for it in generate(n_eval * 20, SEEDS["eval"], "eval") if not it.pairs & seen][:n_eval]
    return {"train": train, "valid": valid, "eval": evals}


def write_jsonl(items: list, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(it.row(), ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    return path


def write_demo_data(out_dir: Path, *, policy: bool = True, **sizes: int) -> dict[str, Path]:
    """train/valid/eval JSONL; with `policy`, train also holds the refusal and look-alike rows of
    `fine_tune.demo.safety` and the general replay rows of `fine_tune.demo.general`, at seeded positions, and valid
    holds held-out rows of each kind in the training proportions (from their own seeds and pools), `n_valid` rows
    in all, so that the validation loss covers the same task mix as training."""
    splits: dict[str, list] = dict(demo_splits(**sizes))
    if policy:
        train, rows, general = list(splits["train"]), generate_policy(), generate_general()
        rng = random.Random(SEEDS["train"])
        for item in rows + general:
            train.insert(rng.randrange(len(train) + 1), item)
        # triage keeps its share of the validation rows (the first ones of the triage split), the rest is held out
        valid = splits["valid"][: round(len(splits["valid"]) * len(splits["train"]) / len(train))]
        scale = len(valid) / len(splits["train"])  # validation rows per training row of each kind
        refuse = sum(it.refuse for it in rows)
        kinds = Counter(it.template for it in general)

        def share(n: int) -> int:
            return round(n * scale)

        held = generate_policy_valid(share(refuse), share(len(rows) - refuse)) + generate_general(
            share(kinds["arithmetic"]),
            seed=22,
            facts=VALID_FACTS[: share(kinds["fact"])],
            formats=VALID_FORMATS[: share(kinds["format"])],
            question="Work out {a} {op} {b} and give just the result.",  # phrased apart from the training sums
        )
        rng = random.Random(SEEDS["valid"])
        for item in held:
            valid.insert(rng.randrange(len(valid) + 1), item)
        splits["train"], splits["valid"] = train, valid
    return {name: write_jsonl(items, Path(out_dir) / f"{name}.jsonl") for name, items in splits.items()}


def probe_row(item: TriageItem) -> dict:
    """A probe for the triage job: the prompt, checked by a JSON checker on both labels."""
    return {
        "id": item.id,
        "prompt": item.prompt,
        "check": {
            "type": "json",
            "required": ["severity", "category"],
            "equals": {"severity": item.severity, "category": item.category},
        },
    }


def write_probes(items: list[TriageItem], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(probe_row(it), ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    return path


def write_cpt_text(path: Path, n: int = 300, seed: int = 4) -> Path:
    """Raw domain text for the CPT stage: incident reports with no instructions, from their own seed."""
    rows = [{"id": it.id, "text": it.report} for it in generate(n, seed, "cpt")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
