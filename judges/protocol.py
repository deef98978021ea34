"""Blind pairwise judging in both orders and rubric scoring, every judgement cached.

Pairwise (FastChat's protocol): the judge sees the two answers as A and B, never the model names, once
with the base as A and once with the candidate as A. When both orders pick the same model, it wins;
when they disagree (or either says tie), the prompt is a tie; a judgement whose verdict cannot be parsed
is asked again (`parse_retries` times, with the next seed) and then counted as a parse failure, never
guessed. In choice mode (logprobs), the verdict is the option with the higher probability.

Rubric: each answer is scored alone on each axis, 1-5, with anchored descriptions; in choice mode the
score is the probability-weighted mean over the tokens 1-5, otherwise the parsed "Score: N".

A judgement is cached under the judge's identity, the prompt file's version and hash, the rendered
prompt (question, both answers, their order), the mode and the seed, so a run that dies mid-way resumes
where it stopped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.cache import MeasurementCache, measurement_key
from harness.core.files import tomllib
from harness.core.hashing import sha256_bytes
from judges.backends import Backend, Reply
from judges.results import JudgeRun, OrderVerdict, PairJudgement, RubricScore

PROMPTS = Path(__file__).parent / "prompts"
PAIRWISE = {"text": "pairwise-v1.txt", "choice": "pairwise-choice-v1.txt"}
RUBRIC = {"text": "rubric-v1.txt", "choice": "rubric-choice-v1.txt"}
DEFAULT_AXES_FILE = PROMPTS / "axes-v1.toml"
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_SCORE = re.compile(r"score\s*[:=]\s*\[?\[?\s*([1-5])\b", re.I)
SCORES = ("1", "2", "3", "4", "5")


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str

    @property
    def version(self) -> str:
        return f"{self.name}@{sha256_bytes(self.text.encode())[:12]}"


def load_prompt(name: str) -> Prompt:
    return Prompt(name, (PROMPTS / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Axis:
    name: str
    description: str
    anchors: tuple[str, ...]

    def scale(self) -> str:
        return "\n".join(f"{i} = {a}" for i, a in enumerate(self.anchors, start=1))


def load_axes(names: list[str] | None, path: str | Path | None = None) -> list[Axis]:
    """The axes named (all in the file when `names` is None) from a TOML axes file (default: the shipped one)."""
    src = Path(path) if path else DEFAULT_AXES_FILE
    table = tomllib.loads(src.read_text(encoding="utf-8"))
    axes = {}
    for name, spec in table.items():
        anchors = spec.get("anchors") if isinstance(spec, dict) else None
        if not (isinstance(spec, dict) and isinstance(spec.get("description"), str)) or not (
            isinstance(anchors, list) and len(anchors) == 5 and all(isinstance(a, str) for a in anchors)
        ):
            raise ValueError(f"{src}: axis [{name}] needs a description and 5 anchors (one per score 1-5)")
        axes[name] = Axis(name, spec["description"], tuple(anchors))
    unknown = [n for n in names or () if n not in axes]
    if unknown:
        raise ValueError(f"unknown rubric axes {unknown} in {src}; it defines: {', '.join(axes)}")
    return [axes[n] for n in (names if names is not None else list(axes))]


def parse_pairwise(reply: Reply) -> tuple[str | None, str]:
    """(choice, reason) from a pairwise reply: probabilities when there are any, else the last [[X]]."""
    if reply.probs:
        a, b = reply.probs.get("A", 0.0), reply.probs.get("B", 0.0)
        return ("A" if a > b else "B" if b > a else "tie"), f"P(A) = {a:.3f}, P(B) = {b:.3f}"
    found = _VERDICT.findall(reply.text)
    if not found:
        return None, reply.text.strip()
    reason = reply.text[: reply.text.rfind("[[")].strip()
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]], reason


def parse_score(reply: Reply) -> tuple[float | None, str]:
    if reply.probs:
        return sum(int(k) * v for k, v in reply.probs.items()), "expected score over P(1..5)"
    found = _SCORE.findall(reply.text)
    if not found:
        bare = reply.text.strip()
        return (float(bare), "") if bare in SCORES else (None, reply.text.strip())
    return float(found[-1]), reply.text[: reply.text.lower().rfind("score")].strip()


@dataclass
class Judge:
    """Asks a backend, with retries on unparseable replies and a cache of every reply."""

    backend: Backend
    cache: MeasurementCache
    mode: str  # "choice" (logprobs) or "text"
    seed: int = 0
    parse_retries: int = 2
    max_tokens: int = 256
    asked: int = 0
    cached: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _reply(self, prompt: Prompt, rendered: str, options: tuple[str, ...] | None, seed: int) -> Reply:
        key = measurement_key(
            "judgement",
            model=self.backend.identity(),  # the judge's endpoint and model, never its key
            data=sha256_bytes(rendered.encode()),  # the rendered request: both answers, in this order
            options={
                "mode": self.mode,
                "options": list(options or ()),
                "seed": seed,
                "max_tokens": self.max_tokens if options is None else 1,
            },
            code=prompt.version,  # a new prompt version is a new judgement
        )
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.cached += 1
            return Reply.from_dict(hit)
        reply = self.backend.ask(
            rendered, options=options, max_tokens=self.max_tokens if options is None else 1, seed=seed
        )
        with self._lock:
            self.asked += 1
        self.cache.put(key, reply.to_dict())
        return reply

    def ask(
        self, prompt: Prompt, fields: dict[str, str], options: tuple[str, ...], parse: Callable[[Reply], tuple]
    ) -> tuple[Any, str, dict[str, float] | None, int]:
        rendered = prompt.text.format(**fields)
        opts = options if self.mode == "choice" else None
        for attempt in range(self.parse_retries + 1):
            reply = self._reply(prompt, rendered, opts, self.seed + attempt)
            value, reason = parse(reply)
            if value is not None:
                return value, reason, reply.probs, attempt + 1
        return None, reason, reply.probs, self.parse_retries + 1


def judge_pairs(
    judge: Judge,
    items: list[tuple[str, str, str, str]],
    *,
    axes: list[Axis] = (),
    on_done: Callable[[], None] | None = None,
) -> JudgeRun:
    """`items`: (id, question, base answer, candidate answer). Both orders per item, then rubric scores."""
    pairwise = load_prompt(PAIRWISE[judge.mode])
    rubric = load_prompt(RUBRIC[judge.mode])

    def order(question: str, a: str, b: str) -> OrderVerdict:
        choice, reason, probs, attempts = judge.ask(
            pairwise, {"question": question, "answer_a": a, "answer_b": b}, ("A", "B"), parse_pairwise
        )
        return OrderVerdict(choice, reason, probs, attempts)

    def one(item: tuple[str, str, str, str]) -> tuple[PairJudgement, list[RubricScore]]:
        iid, q, base, cand = item
        pair = PairJudgement(iid, q, base, cand, order(q, base, cand), order(q, cand, base))
        scores = []
        for axis in axes:
            for variant, answer in (("base", base), ("candidate", cand)):
                fields = {
                    "axis": axis.name,
                    "description": axis.description,
                    "anchors": axis.scale(),
                    "question": q,
                    "answer": answer,
                }
                score, reason, _, attempts = judge.ask(rubric, fields, SCORES, parse_score)
                scores.append(RubricScore(iid, axis.name, variant, score, reason, attempts))
        if on_done:
            on_done()
        return pair, scores

    with ThreadPoolExecutor(max_workers=max(1, judge.backend.concurrency)) as pool:
        done = list(pool.map(one, items))
    return JudgeRun(
        judge=judge.backend.identity(),
        mode=judge.mode,
        prompts={"pairwise": pairwise.version, **({"rubric": rubric.version} if axes else {})},
        seed=judge.seed,
        pairs=tuple(p for p, _ in done),
        rubric=tuple(s for _, ss in done for s in ss),
        axes=tuple(a.name for a in axes),
        calls={"asked": judge.asked, "cached": judge.cached},
    )
