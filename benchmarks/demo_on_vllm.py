"""The demo's gates through a vLLM server, next to the same gates in-process (`hf`): the same verdicts?

    PYTHONPATH=. .venv/bin/python benchmarks/demo_on_vllm.py --demo DIR [--vllm-python .venv-vllm/bin/python]

DIR is a finished `harness demo --out DIR` run (its release.toml, adapter and report/). The script starts vLLM's
OpenAI server for the demo's base and adapter (`cand`), writes DIR/release-vllm.toml (the demo's config plus the
`[model]` lines that point base and candidate at the server), gates into DIR/report-vllm, stops the server and
prints each gate's verdict and figures from both reports, and which engine answered each variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def _figures(g: dict) -> str:
    parts = []
    for k in ("baseline", "candidate", "delta"):
        v = g.get(k)
        if isinstance(v, int | float):
            parts.append(f"{k} {v:.4g}")
    return ", ".join(parts) or "–"


def open_demo(path: Path) -> tuple[Path, Any, Any]:
    """A finished demo directory, its base model and its adapter (as `harness gate` resolves them)."""
    from harness.config import load_config
    from harness.core.models import check_adapter, resolve_base

    demo = path.resolve()
    cfg = load_config(demo / "release.toml")
    base = resolve_base(cfg.model.base, cfg.base_dir)
    return demo, base, check_adapter(cfg.model.adapter, base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True, type=Path, help="a finished `harness demo --out DIR` directory")
    ap.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    args = ap.parse_args()

    from harness.pipeline import run
    from harness.release import vllm_server

    demo, base, adapter = open_demo(args.demo)
    port = vllm_server.free_port()
    t = time.perf_counter()
    server = vllm_server.start(
        base.dir, {"cand": adapter.dir}, python=args.vllm_python, port=port, max_model_len=2048, log=demo / "vllm.log"
    )
    print(f"vLLM server at {server.url} ({time.perf_counter() - t:.0f} s to start), log {demo / 'vllm.log'}")
    lines = server.config_lines().removeprefix("[model]\n")
    lines += "send_seed = false  # vLLM's CPU build kills its engine on seeded sampling requests\n"
    text = (demo / "release.toml").read_text().replace("\n[run]\n", f"\n{lines}\n[run]\n", 1)
    vcfg = demo / "release-vllm.toml"
    vcfg.write_text(text)
    out = demo / "report-vllm"
    try:
        t = time.perf_counter()
        res = run(vcfg, out, overwrite=True)
        took = time.perf_counter() - t
    finally:
        server.stop()
    hf = json.loads((demo / "report" / "report.json").read_text())
    served = res.report.to_dict()
    by = {g["name"]: g for g in hf["gates"]}
    print(f"\ngated through vLLM in {took:.0f} s; overall: hf {hf['verdict']}, vLLM {served['verdict']}\n")
    print("| gate | hf verdict | vLLM verdict | hf figures | vLLM figures |")
    print("|---|---|---|---|---|")
    same = True
    for g in served["gates"]:
        h = by.get(g["name"], {})
        same &= h.get("verdict") == g["verdict"]
        print(f"| {g['name']} | {h.get('verdict')} | {g['verdict']} | {_figures(h)} | {_figures(g)} |")
    for v, r in served["manifest"].get("runtimes", {}).items():
        print(f"\n{v} answered by {r.get('engine')}: {r.get('served_as')} at {r.get('server')} (root {r.get('root')})")
    print(f"\nsame verdicts: {same}; reports: {demo / 'report'} and {out}")


if __name__ == "__main__":
    main()
