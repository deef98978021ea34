"""The seeded generator behind `builtin:general`, the regression gate's suite of checkable general prompts.

Each item asks for one short, unambiguous answer and carries it twice: as a `check` (what a sampled
answer must satisfy) and as a `completion` (the reference answer, exactly in the form the prompt asks
for). The same file is therefore a probe suite (prompt + check, for pass rates) and a chat data set
(prompt + completion, for the log-likelihood of the reference answer). Skills: arithmetic, unit
conversion, string and list operations, counting, facts and format following.

    python -m probes.general_gen > probes/data/general.jsonl   # what ships (a test checks it is unchanged)
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

NUMBER_ONLY = "Answer with the number only."
WORD_ONLY = "Answer with one word only."

# (question, one-word answer): unambiguous facts, none of them in the demo's replay rows
FACTS = (
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of England?", "London"),
    ("What is the capital of Greece?", "Athens"),
    ("What is the capital of Portugal?", "Lisbon"),
    ("What is the capital of Norway?", "Oslo"),
    ("What is the capital of Austria?", "Vienna"),
    ("What is the capital of Ireland?", "Dublin"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of Thailand?", "Bangkok"),
    ("What is the capital of Peru?", "Lima"),
    ("What is the capital of Poland?", "Warsaw"),
    ("What is the capital of Sweden?", "Stockholm"),
    ("What is the capital of Cuba?", "Havana"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("Which planet do we live on?", "Earth"),
    ("Which ocean is the largest?", "Pacific"),
    ("What star is at the center of our solar system?", "Sun"),
    ("What is the natural satellite of the Earth called?", "Moon"),
    ("What color do you get by mixing blue and yellow?", "Green"),
    ("What color do you get by mixing red and white?", "Pink"),
    ("What color is the sky on a clear day?", "Blue"),
    ("What color is fresh snow?", "White"),
    ("What color are ripe bananas?", "Yellow"),
    ("What is the opposite of hot?", "Cold"),
    ("What is the opposite of up?", "Down"),
    ("What is the opposite of day?", "Night"),
    ("What is the opposite of wet?", "Dry"),
    ("What is the opposite of fast?", "Slow"),
    ("Which animal is known as the king of the jungle?", "Lion"),
    ("Which animal says moo?", "Cow"),
    ("Which animal barks?", "Dog"),
    ("What color is grass?", "Green"),
    ("What is frozen water called?", "Ice"),
    ("What gas do humans need to breathe to live?", "Oxygen"),
    ("What is the first month of the year?", "January"),
    ("What is the last month of the year?", "December"),
    ("What day comes after Monday?", "Tuesday"),
    ("What day comes before Sunday?", "Saturday"),
    ("Which season comes after winter?", "Spring"),
    ("What is the largest mammal in the world?", "Whale"),
    ("What language is mainly spoken in Brazil?", "Portuguese"),
    ("What language is mainly spoken in Mexico?", "Spanish"),
    ("What is the currency of Japan?", "Yen"),
    ("What organ pumps blood through the body?", "Heart"),
    ("What do you call a baby cat?", "Kitten"),
    ("What do you call a baby dog?", "Puppy"),
    ("Which fruit keeps the doctor away, according to the saying?", "Apple"),
    ("What is the hardest natural substance?", "Diamond"),
    ("Which continent is Egypt in?", "Africa"),
    ("Which continent is France in?", "Europe"),
    ("On which continent is the Amazon rainforest?", "America"),
)
# facts with a numeric answer
NUMBER_FACTS = (
    ("How many days are there in a week?", 7),
    ("How many legs does a spider have?", 8),
    ("How many legs does a dog have?", 4),
    ("How many months are in a year?", 12),
    ("How many hours are in a day?", 24),
    ("How many seconds are in a minute?", 60),
    ("How many days are in a leap year?", 366),
    ("How many continents are there?", 7),
    ("How many sides does a triangle have?", 3),
    ("How many sides does a square have?", 4),
    ("How many sides does an octagon have?", 8),
    ("How many wheels does a bicycle have?", 2),
    ("At what temperature in degrees Celsius does water freeze?", 0),
    ("At what temperature in degrees Celsius does water boil at sea level?", 100),
    ("How many centimeters are in one meter?", 100),
    ("How many letters are in the English alphabet?", 26),
    ("How many planets are in our solar system?", 8),
    ("How many strings does a standard guitar have?", 6),
)
WORDS = (
    "apple", "river", "garden", "pencil", "window", "silver", "planet", "orange", "rabbit", "candle",
    "forest", "bottle", "market", "bridge", "yellow", "winter", "camera", "doctor", "island", "ladder",
    "mirror", "pepper", "rocket", "saddle", "tunnel", "velvet", "wallet", "anchor", "basket", "castle",
    "dragon", "engine", "falcon", "guitar", "helmet", "jacket", "kettle", "lemon", "magnet", "napkin",
    "cloud", "stone", "tiger", "piano", "horse", "chair", "table", "bread", "plant", "music",
)  # fmt: skip
ITEMS = (
    "apple", "pear", "plum", "grape", "cherry", "peach", "melon", "lime", "fig", "kiwi",
    "chair", "lamp", "desk", "sofa", "shelf", "rug", "clock", "vase", "bed", "stool",
)  # fmt: skip
UNITS = (  # (question template, factor, range of the amount)
    ("How many meters are in {a} kilometers?", 1000, (2, 10)),
    ("How many minutes are in {a} hours?", 60, (2, 12)),
    ("How many seconds are in {a} minutes?", 60, (2, 10)),
    ("How many grams are in {a} kilograms?", 1000, (2, 10)),
    ("How many hours are in {a} days?", 24, (2, 7)),
    ("How many days are in {a} weeks?", 7, (2, 10)),
    ("How many eggs are in {a} dozen?", 12, (2, 10)),
    ("How many centimeters are in {a} meters?", 100, (2, 10)),
    ("How many months are in {a} years?", 12, (2, 10)),
    ("How many millimeters are in {a} centimeters?", 10, (2, 20)),
)


@dataclass(frozen=True)
class GeneralItem:
    id: str
    skill: str
    prompt: str
    answer: str
    check: dict[str, Any]

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "skill": self.skill,
            "prompt": self.prompt,
            "completion": self.answer,
            "check": self.check,
        }


def _num(v: int) -> dict[str, Any]:
    return {"type": "numeric", "value": v}


def _word(answer: str, case_sensitive: bool = False) -> dict[str, Any]:
    import re

    spec: dict[str, Any] = {"type": "regex", "pattern": rf"(?<![A-Za-z]){re.escape(answer)}(?![A-Za-z])"}
    if not case_sensitive:
        spec["flags"] = "i"
    return spec


def _arithmetic(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        op = rng.choice("+-*/")
        if op == "+":
            a, b = rng.randrange(2, 90), rng.randrange(2, 90)
            v = a + b
        elif op == "-":
            a, b = rng.randrange(20, 99), rng.randrange(2, 20)
            v = a - b
        elif op == "*":
            a, b = rng.randrange(2, 13), rng.randrange(2, 13)
            v = a * b
        else:
            b, v = rng.randrange(2, 10), rng.randrange(2, 13)
            a = b * v
        yield f"What is {a} {op} {b}? {NUMBER_ONLY}", str(v), _num(v)


def _units(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        q, factor, (lo, hi) = rng.choice(UNITS)
        a = rng.randrange(lo, hi + 1)
        yield f"{q.format(a=a)} {NUMBER_ONLY}", str(a * factor), _num(a * factor)


def _strings(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        w = rng.choice(WORDS)
        kind = rng.randrange(5)
        if kind == 0:
            yield f"Write the word {w} in capital letters. {WORD_ONLY}", w.upper(), _word(w.upper(), True)
        elif kind == 1:
            yield f"Spell the word {w} backwards. {WORD_ONLY}", w[::-1], _word(w[::-1])
        elif kind == 2:
            yield f"What is the first letter of the word {w}? Answer with the letter only.", w[0], _word(w[0])
        elif kind == 3:
            yield f"What is the last letter of the word {w}? Answer with the letter only.", w[-1], _word(w[-1])
        else:
            cap = w.capitalize()
            yield f"Write the word {cap} in lower case letters. {WORD_ONLY}", w, _word(w, True)


def _lists(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        xs = rng.sample(range(1, 60), rng.randrange(3, 6))
        shown = ", ".join(map(str, xs))
        kind = rng.randrange(4)
        if kind == 0:
            yield f"Which is the largest number in this list: {shown}? {NUMBER_ONLY}", str(max(xs)), _num(max(xs))
        elif kind == 1:
            yield f"Which is the smallest number in this list: {shown}? {NUMBER_ONLY}", str(min(xs)), _num(min(xs))
        elif kind == 2:
            ys = xs[:3]
            s = ", ".join(map(str, ys))
            yield f"What is the sum of {s}? {NUMBER_ONLY}", str(sum(ys)), _num(sum(ys))
        else:
            ys = sorted(xs[:3])
            s = ", ".join(map(str, xs[:3]))
            pattern = r"\D*".join(map(str, ys))
            yield (
                f"Sort these numbers from smallest to largest: {s}. Answer with the numbers separated by commas.",
                ", ".join(map(str, ys)),
                {"type": "regex", "pattern": rf"(?<!\d){pattern}(?!\d)"},
            )


def _counting(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        kind = rng.randrange(3)
        if kind == 0:
            w = rng.choice(WORDS)
            yield f"How many letters are in the word {w}? {NUMBER_ONLY}", str(len(w)), _num(len(w))
        elif kind == 1:
            xs = rng.sample(ITEMS, rng.randrange(2, 7))
            yield f"How many items are in this list: {', '.join(xs)}? {NUMBER_ONLY}", str(len(xs)), _num(len(xs))
        else:
            ws = rng.sample(WORDS, rng.randrange(2, 7))
            yield f"How many words are in this phrase: {' '.join(ws)}? {NUMBER_ONLY}", str(len(ws)), _num(len(ws))


def _facts(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    pool = [(f"{q} {WORD_ONLY}", a, _word(a)) for q, a in FACTS]
    pool += [(f"{q} {NUMBER_ONLY}", str(v), _num(v)) for q, v in NUMBER_FACTS]
    rng.shuffle(pool)
    yield from pool


def _formats(rng: random.Random) -> Iterator[tuple[str, str, dict]]:
    while True:
        w = rng.choice(WORDS)
        kind = rng.randrange(5)
        if kind == 0:
            a, b = rng.randrange(2, 20), rng.randrange(2, 20)
            yield (
                f'What is {a} + {b}? Reply with a JSON object with the key "answer" holding the number, '
                "and nothing else.",
                json.dumps({"answer": a + b}),
                {"type": "json", "equals": {"answer": a + b}},
            )
        elif kind == 1:
            yield (
                f"Put the word {w} inside square brackets. Reply with that only.",
                f"[{w}]",
                {"type": "contains", "value": f"[{w}]"},
            )
        elif kind == 2:
            word = rng.choice(("yes", "no", "ok", "done", "ready"))
            yield (
                f"Reply with exactly the word {word}.",
                word,
                {"type": "regex", "pattern": rf"^\W*{word}\W*$", "flags": "i"},
            )
        elif kind == 3:
            yield (
                f"Repeat the word {w} three times, separated by spaces. Reply with that only.",
                f"{w} {w} {w}",
                {"type": "contains", "value": f"{w} {w} {w}"},
            )
        else:
            yield (
                f'Give a JSON object with the key "word" set to "{w}". Output only the JSON.',
                json.dumps({"word": w}),
                {"type": "json", "equals": {"word": w}},
            )


SKILLS: tuple[tuple[str, Callable[[random.Random], Iterator[tuple[str, str, dict]]], int], ...] = (
    ("arithmetic", _arithmetic, 100),
    ("units", _units, 50),
    ("strings", _strings, 70),
    ("lists", _lists, 70),
    ("counting", _counting, 50),
    ("facts", _facts, len(FACTS) + len(NUMBER_FACTS)),
    ("format", _formats, 56),
)


def generate_general_suite(seed: int = 12) -> list[GeneralItem]:
    """Every skill's items (distinct prompts), interleaved so that any prefix of the suite mixes all skills:
    the regression gate's sequential looks measure prefixes."""
    per_skill: list[list[GeneralItem]] = []
    for skill, gen, count in SKILLS:
        rng = random.Random(f"{seed}-{skill}")
        seen: set[str] = set()
        items: list[GeneralItem] = []
        for prompt, answer, check in gen(rng):
            if prompt in seen:
                continue
            seen.add(prompt)
            items.append(GeneralItem(f"{skill}-{len(items):03d}", skill, prompt, answer, check))
            if len(items) == count:
                break
        per_skill.append(items)
    total = sum(len(s) for s in per_skill)
    # interleave by position fraction: item j of a skill with m items sits at (j + 0.5) / m
    keyed = [(((j + 0.5) / len(s)), k, it) for k, s in enumerate(per_skill) for j, it in enumerate(s)]
    out = [it for _, _, it in sorted(keyed, key=lambda t: (t[0], t[1]))]
    assert len(out) == total
    return out


def suite_jsonl(seed: int = 12) -> str:
    return "".join(json.dumps(it.row(), ensure_ascii=False) + "\n" for it in generate_general_suite(seed))


if __name__ == "__main__":
    sys.stdout.write(suite_jsonl())
