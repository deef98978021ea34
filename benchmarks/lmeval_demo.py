"""The demo's candidate gated on lm-eval tasks (the local ones in examples/lmeval_tasks), in-process (`hf`) and,
with --vllm, through a vLLM server (`openai` runtime): the per-task paired results, and the same decision?

    PYTHONPATH=. .venv/bin/python benchmarks/lmeval_demo.py --demo DIR [--vllm] [--vllm-python .venv-vllm/bin/python]

DIR is a finished `harness demo --out DIR` run. The script copies the example tasks into DIR, writes
DIR/release-lmeval.toml (the demo's base and adapter, and a regression gate on the tasks) and gates into
DIR/report-lmeval; with --vllm it starts vLLM for the base and the adapter (`cand`), writes
DIR/release-lmeval-vllm.toml and gates into DIR/report-lmeval-vllm. Prints one row per task and engine.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATE = """
[run]
seed = 1234

[gates.regression]
tasks = ["harness_general_mc", "harness_arithmetic_gen"]
task_paths = ["lmeval_tasks"]
max_drop = 0.10
text = "builtin:general_text"
"""


def _rows(engine: str, g, took: float) -> list[str]:
    out = []
    for t in g.details["lm_eval"]["tasks"]:
        out.append(
            f"| {engine} | {t['name']} | {t['metric']} | {t['items']} | {t['base']:.1%} | {t['candidate']:.1%} | "
            f"{t['delta']:+.1%} | [{t['ci'][0]:+.1%}, {t['ci'][1]:+.1%}] ({t['level']:.1%}) | "
            f"{t['lost']} / {t['gained']} | {t['mcnemar_p']:.3g} | {t['holm_p_drop']:.3g} | {t['verdict']} |"
        )
    out.append(f"| {engine} | (gate) | | | | | | | | | | **{g.verdict}** in {took:.0f} s |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True, type=Path, help="a finished `harness demo --out DIR` directory")
    ap.add_argument("--vllm", action="store_true", help="also gate through a vLLM server")
    ap.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    args = ap.parse_args()

    from benchmarks.demo_on_vllm import open_demo
    from harness.config import load_config
    from harness.pipeline import run
    from harness.release import vllm_server

    demo, base, adapter = open_demo(args.demo)
    cfg = load_config(demo / "release.toml")
    shutil.copytree(ROOT / "examples" / "lmeval_tasks", demo / "lmeval_tasks", dirs_exist_ok=True)
    model = f'[model]\nbase = "{cfg.model.base}"\nadapter = "{adapter.dir}"\n'
    hcfg = demo / "release-lmeval.toml"
    hcfg.write_text(model + GATE)
    t = time.perf_counter()
    hf = next(g for g in run(hcfg, demo / "report-lmeval", overwrite=True).report.gates if g.name == "regression")
    rows = _rows("hf", hf, time.perf_counter() - t)
    same = None
    if args.vllm:
        t = time.perf_counter()
        server = vllm_server.start(
            base.dir, {"cand": adapter.dir}, python=args.vllm_python, port=vllm_server.free_port(), max_model_len=2048
        )
        print(f"vLLM server at {server.url} ({time.perf_counter() - t:.0f} s to start)")
        lines = server.config_lines().removeprefix("[model]\n") + "send_seed = false\n"
        vcfg = demo / "release-lmeval-vllm.toml"
        vcfg.write_text(model + lines + GATE)
        try:
            t = time.perf_counter()
            res = run(vcfg, demo / "report-lmeval-vllm", overwrite=True)
            took = time.perf_counter() - t
        finally:
            server.stop()
        vg = next(g for g in res.report.gates if g.name == "regression")
        rows += _rows("vLLM server", vg, took)
        per = {e: {t["name"]: t["verdict"] for t in g.details["lm_eval"]["tasks"]} for e, g in (("hf", hf), ("v", vg))}
        same = vg.verdict == hf.verdict and per["hf"] == per["v"]
    print(
        "\n| engine | task | metric | documents | base | candidate | change | CI (level) | lost / gained | McNemar p "
        "| Holm p (drop >= 10 pts) | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{hf.explanation}")
    if same is not None:
        print(f"\nsame decision (gate and every task): {same}")


if __name__ == "__main__":
    main()
