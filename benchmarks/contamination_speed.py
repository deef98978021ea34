"""How long the contamination check takes: N training items against M eval items (exact 13-grams + fuzzy).

    python benchmarks/contamination_speed.py [--train 20000] [--eval 2000]

Data: seeded synthetic incident reports (the demo's generator: heavily templated text, the hard case for
the prefilter, since every item shares template words), each with a line of notes drawn from a 5,000-word
vocabulary so that items are distinct, as in real data. 1% of the eval items are planted into training
(verbatim, re-punctuated, or with two words swapped) so the run also shows they are found.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from fine_tune.demo.triage import generate
from probes.contamination import contamination
from probes.overlap import read_text_set


def planted(text: str, how: int, rng: random.Random) -> str:
    if how == 0:
        return text
    if how == 1:
        return text.replace(".", " ;").replace(",", "").upper()
    words = text.split()
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--eval", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(0)
    vocab = [f"{rng.choice('bcdfgklmnprst')}{rng.choice('aeiou')}{rng.choice('lnrst')}{i}" for i in range(5000)]

    def rows(n: int, seed: int, prefix: str) -> list[dict]:
        out = []
        for it in generate(n, seed, prefix):
            row = it.row()
            notes = " ".join(rng.choice(vocab) for _ in range(12))
            row["prompt"] = [{"role": "user", "content": f"{it.prompt}\nNotes: {notes}."}]
            out.append(row)
        return out

    train = rows(args.train, 101, "bt")
    evals = rows(args.eval, 202, "be")
    plant = rng.sample(range(len(evals)), max(1, len(evals) // 100))
    for k, j in enumerate(plant):
        row = dict(evals[j])
        row["id"] = f"planted-{k}"
        row["prompt"] = [{"role": "user", "content": planted(evals[j]["prompt"][0]["content"], k % 3, rng)}]
        train.append(row)
    with tempfile.TemporaryDirectory() as d:
        tp, ep = Path(d) / "train.jsonl", Path(d) / "eval.jsonl"
        tp.write_text("".join(json.dumps(r) + "\n" for r in train))
        ep.write_text("".join(json.dumps(r) + "\n" for r in evals))
        t0 = time.perf_counter()
        ts, es = read_text_set(str(tp)), read_text_set(str(ep))
        t1 = time.perf_counter()
        run = contamination([es], [ts])
        t2 = time.perf_counter()
    found = {m.eval_id for m in run.evals[0].matches}
    want = {evals[j]["id"] for j in plant}
    print(f"train {len(train)} items, eval {len(evals)} items (templated synthetic reports)")
    print(f"read {t1 - t0:.1f} s, exact + fuzzy overlap {t2 - t1:.1f} s, total {t2 - t0:.1f} s")
    print(f"planted {len(want)}: found {len(want & found)}; other eval items flagged: {len(found - want)} ")


if __name__ == "__main__":
    main()
