"""Two releases on the embedded model: train v1, gate it against the base, promote it; train v2 with another
recipe, gate it against `registry:` (v1, the champion), and promote it if it passes.

    PYTHONPATH=. .venv/bin/python benchmarks/two_releases.py runs/two-releases

Every step is the `harness` command a user would type (printed before it runs), timed; at the end a table of both
releases' verdicts, the wall time of each step and the cache hits of the second gating (v1's measurements are
read back from the cache where v2's gates ask for the same ones). Needs a new (or empty) OUT directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RECIPE = """\
[model]
base = "smollm2-135m-instruct"
candidate = "{name}/sft/adapter"
reference = "{reference}"

[run]
seed = 1234

[fine_tune]
train = "data/train.jsonl"
valid = "data/valid.jsonl"
{recipe}
warmup_steps = 5
max_steps = 40
batch_size = 8
eval_steps = 40
save_steps = 40

[gates.perplexity]
data = "data/eval.jsonl"
min_relative_improvement = {ppl_margin}

[gates.pass_at_k]
data = "builtin:triage_probes"
n = 2
k = 1
temperature = 0.7
max_new_tokens = 24
margin = {pass_margin}

[gates.safety]
tolerance = 0.05
over_refusal_tolerance = 0.05
max_new_tokens = 32
{extra}"""

# v1: the demo's recipe (LoRA r=16 on the attention projections, lr 1e-3), gated against the base: it must beat it
V1 = RECIPE.format(
    name="v1",
    reference="base",
    recipe="r = 16\nalpha = 32\nlearning_rate = 1e-3",
    ppl_margin=0.05,
    pass_margin=0.0,
    extra="",
)
# v2: another recipe (r=8 on every linear layer, lr 2e-3), gated against the champion: it must not be worse than
# v1 on the job (non-inferiority), and it must not forget what v1 still knew
V2 = RECIPE.format(
    name="v2",
    reference="registry:registry",
    recipe='r = 8\nalpha = 16\nlearning_rate = 2e-3\ntarget_modules = ["q_proj", "k_proj", "v_proj", "o_proj", '
    '"gate_proj", "up_proj", "down_proj"]',
    ppl_margin=-0.05,
    pass_margin=-0.05,
    extra='\n[gates.regression]\nscore = "greedy"\nitems = 100\nmax_items = 200\nmax_new_tokens = 48\n',
)


def harness(*args: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[int, float]:
    print(f"$ harness {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    code = subprocess.run([str(Path(sys.executable).with_name("harness")), *args], cwd=cwd).returncode
    if code not in ok:
        raise SystemExit(f"harness {args[0]} exited {code}")
    return code, time.perf_counter() - t0


def main(out: Path) -> None:
    from fine_tune.demo.triage import write_demo_data

    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: choose a new directory")
    write_demo_data(out / "data")
    (out / "v1.toml").write_text(V1)
    (out / "v2.toml").write_text(V2)
    times: dict[str, float] = {}
    _, times["train v1"] = harness("train", "--config", "v1.toml", "--out", "v1", cwd=out)
    code1, times["gate v1 (against the base)"] = harness("gate", "--config", "v1.toml", "--out", "gate-v1", cwd=out,
                                                         ok=(0, 1))  # fmt: skip
    if code1 != 0:
        raise SystemExit("v1 was blocked against the base: nothing to promote (see gate-v1/report.md)")
    _, times["promote v1"] = harness("promote", "--report", "gate-v1/report.json", "--to", "registry", cwd=out)
    _, times["train v2"] = harness("train", "--config", "v2.toml", "--out", "v2", cwd=out)
    code2, times["gate v2 (against registry:registry)"] = harness(
        "gate", "--config", "v2.toml", "--out", "gate-v2", cwd=out, ok=(0, 1)
    )
    if code2 == 0:
        _, times["promote v2"] = harness("promote", "--report", "gate-v2/report.json", "--to", "registry", cwd=out)
    harness("registry", "list", "registry", cwd=out)

    print("\n| release | reference | gate | verdict | reference value | candidate value | change | 95% CI |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("v1", "v2"):
        rep = json.loads((out / f"gate-{name}" / "report.json").read_text())
        ref = rep["reference"]
        where = f"registry v{ref['registry']['version']}" if ref.get("registry") else ref["form"]
        for g in rep["gates"]:
            ci = f"[{g['ci'][0]:.3g}, {g['ci'][1]:.3g}]" if g.get("ci") else "–"
            nums = [f"{g[k]:.4g}" if isinstance(g.get(k), (int, float)) else "–" for k in
                    ("baseline", "candidate", "delta")]  # fmt: skip
            print(f"| {name} | {where} ({ref['sha256'][:12]}) | `{g['name']}` | {g['verdict']} | "
                  + " | ".join(nums) + f" | {ci} |")  # fmt: skip
        print(f"| {name} | | **release** | **{rep['verdict']}** | | | | |")
    cache = json.loads((out / "gate-v2" / "report.json").read_text())["manifest"]["cache"]
    print(f"\nsecond gating's cache: {cache['hits']} hits / {cache['misses']} misses")
    print("\n| step | wall time (s) |\n|---|---|")
    for step, s in times.items():
        print(f"| {step} | {s:.0f} |")
    print(f"| all | {sum(times.values()):.0f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
