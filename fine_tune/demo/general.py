"""General instruction rows mixed into the demo's training data (replay), so the fine-tune keeps its
general skills while it learns triage: arithmetic, facts, formatting and simple instructions, each
answered correctly. Phrased and chosen apart from `builtin:general` (the regression gate's suite): other
numbers, other facts, other wordings; the contamination check keeps them apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fine_tune.demo.rows import chat_row

FACTS = (
    ("Which country has Rome as its capital?", "Rome is the capital of Italy."),
    ("Name the capital city of Canada.", "The capital of Canada is Ottawa."),
    ("In which country is the city of Nairobi the capital?", "Nairobi is the capital of Kenya."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("What do bees make from nectar?", "Bees make honey from nectar."),
    ("Which metal is liquid at room temperature?", "Mercury is a metal that is liquid at room temperature."),
    ("How many sides does a hexagon have?", "A hexagon has 6 sides."),
    ("Who wrote the play Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the tallest mountain on Earth?", "Mount Everest is the tallest mountain on Earth."),
)
FORMATS = (
    ("Turn the phrase good morning into upper case.", "GOOD MORNING"),
    ("Reverse the letters of the word dog.", "god"),
    ('Produce a JSON object whose key "city" holds the value "Oslo". Nothing else.', '{"city": "Oslo"}'),
    ("Give two animals, separated by a semicolon.", "cat; horse"),
    ("Write the first four even numbers on one line, separated by commas.", "2, 4, 6, 8"),
    ("Wrap the word ready in double quotes.", '"ready"'),
    ("Answer with only the word no.", "no"),
    ("Make a numbered list of three vegetables.", "1. Carrot\n2. Potato\n3. Spinach"),
    ("Write a sentence about the sea that uses the word blue.", "The sea looked deep and blue under the morning sky."),
    ("Give the plural of the word mouse.", "The plural of mouse is mice."),
)
# held out for the validation file: other facts, other formats (arithmetic: other numbers)
VALID_FACTS = (
    ("Which ocean lies between Africa and Australia?", "The Indian Ocean lies between Africa and Australia."),
    ("How many legs does a spider have?", "A spider has 8 legs."),
    ("At what temperature in degrees Celsius does water freeze?", "Water freezes at 0 degrees Celsius."),
    ("Which musical instrument usually has 88 keys?", "The piano usually has 88 keys."),
)
VALID_FORMATS = (
    ("List the two days of the weekend, separated by a comma.", "Saturday, Sunday"),
    ("Put the word hello between angle brackets.", "<hello>"),
    ("Return a JSON list of the first three letters of the alphabet, nothing else.", '["a", "b", "c"]'),
    ("Write three colours, one per line.", "red\ngreen\nblue"),
)
OPS = (("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b), ("times", lambda a, b: a * b))


@dataclass(frozen=True)
class GeneralItem:
    id: str
    prompt: str
    answer: str
    template: str

    def row(self) -> dict:
        return chat_row(self.id, self.prompt, self.answer, template=self.template, task="general")


def generate_general(
    n_arithmetic: int = 10,
    seed: int = 21,
    facts: tuple[tuple[str, str], ...] = FACTS,
    formats: tuple[tuple[str, str], ...] = FORMATS,
    question: str = "Compute {a} {op} {b}. Reply with the number only.",
) -> list[GeneralItem]:
    """`facts`, `formats` and `n_arithmetic` seeded arithmetic questions asked as `question`."""
    rng = random.Random(seed)
    items = [GeneralItem(f"general-{seed}-f{i:02d}", q, a, "fact") for i, (q, a) in enumerate(facts)]
    items += [GeneralItem(f"general-{seed}-x{i:02d}", q, a, "format") for i, (q, a) in enumerate(formats)]
    for i in range(n_arithmetic):
        (word, fn), a, b = rng.choice(OPS), rng.randrange(16, 60), rng.randrange(2, 15)
        ask, answer = question.format(a=a, op=word, b=b), str(fn(a, b))
        items.append(GeneralItem(f"general-{seed}-a{i:02d}", ask, answer, "arithmetic"))
    return items
