"""The `hf` runtime next to vLLM's OpenAI server, side by side in one run, on the same machine.

    PYTHONPATH=. .venv/bin/python benchmarks/backends.py [--server http://127.0.0.1:8000/v1] [--n 10] [--probes 40]

Measures, for the base model: the demo's pass@k sampling (every triage probe, n samples, 64 new tokens,
temperature 0.7) and perplexity on the demo's eval text, through the `hf` runtime, vLLM's OpenAI server and
vLLM's in-process engine (`backend = "vllm"`, run from vLLM's environment, where `make .venv-vllm/.installed` puts
the harness too). Without `--server`, it starts vLLM's server from `.venv-vllm` and stops it afterwards. Prints
the hardware each figure came from. The engines run one after another, never at once.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path


def _hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores (CPU)"


def _measure(name: str, rt, convs, text, params, hw: str) -> str:
    from probes.perplexity import nll

    t = time.perf_counter()
    outs = rt.generate(convs, params, batch_size=16, description=f"sampling: {name}")
    gen_s = time.perf_counter() - t
    tokens = sum(len(c.token_ids) for o in outs for c in o)
    t = time.perf_counter()
    m = nll(rt, text, description=f"perplexity: {name}")
    ppl_s = time.perf_counter() - t
    return (
        f"| {name} | {hw} | {gen_s:.1f} | {tokens / gen_s:.1f} | {ppl_s:.1f} | "
        f"{m.total_tokens / ppl_s:.1f} | {m.perplexity:.4f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", help="a running vLLM server serving the embedded base as `base`")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--probes", type=int, default=0, help="the first N triage probes only (default: all 40)")
    ap.add_argument("--vllm-python", default=".venv-vllm/bin/python", help="vLLM's environment (harness in it too)")
    ap.add_argument("--only", choices=["vllm-in-process"], help=argparse.SUPPRESS)  # one row, in vLLM's environment
    args = ap.parse_args()

    from fine_tune.demo.triage import write_demo_data
    from harness.core.data import load_dataset
    from harness.core.models import EMBEDDED_ALIAS, resolve_base
    from harness.core.runtime import GenParams
    from harness.core.runtime.load import Runtimes
    from harness.core.runtime.openai import Served
    from harness.release import vllm_server
    from probes.suites import load_suite

    base = resolve_base(EMBEDDED_ALIAS)
    convs = [list(i.messages) for i in load_suite("builtin:triage_probes").items]
    convs = convs[: args.probes] if args.probes else convs
    text = load_dataset(write_demo_data(Path(tempfile.mkdtemp()))["eval"])
    # the same sampling everywhere; no per-request seed: vLLM's CPU build kills its engine on seeded requests
    params = GenParams(n=args.n, temperature=0.7, top_p=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    hw = _hardware()
    if args.only:
        rt = Runtimes(base, None, backend="vllm").get("base")
        print(_measure("vLLM in-process (vllm.LLM)", rt, convs, text, params, hw), flush=True)
        return
    print(f"base {base.id}; {len(convs)} triage probes x n = {args.n} x {args.max_new_tokens} tokens; PPL on "
          f"{len(text)} eval rows; hardware: {hw}\n")  # fmt: skip
    print("| engine | hardware | sampling wall s | generated tokens/s | PPL wall s | scored tokens/s | PPL |")
    print("|---|---|---|---|---|---|---|")
    hf = Runtimes(base, None, dtype="float32").get("base")
    print(_measure("hf (in-process transformers, batch 16)", hf, convs, text, params, hw), flush=True)
    hf.close()
    server = None  # started after the hf row, so an idle engine takes no CPU from it
    url = args.server
    try:
        if url is None:
            port = vllm_server.free_port()
            server = vllm_server.start(base.dir, {}, python=args.vllm_python, port=port, max_model_len=1024)
            url = server.url
        rt = Runtimes(base, None, backend="openai", state=Served(url, "base", "base", send_seed=False)).get("base")
        print(_measure(f"vLLM server ({url})", rt, convs, text, params, hw), flush=True)
    finally:
        if server is not None:
            server.stop()
    if Path(args.vllm_python).is_file():  # the in-process engine lives in vLLM's environment: a row from there
        cmd = [args.vllm_python, __file__, "--only", "vllm-in-process", "--n", str(args.n)]
        cmd += ["--max-new-tokens", str(args.max_new_tokens), "--probes", str(args.probes)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        row = subprocess.run(cmd, env=env, capture_output=True, text=True)
        rows = [line for line in row.stdout.splitlines() if line.startswith("| ")]  # vLLM logs to stdout too
        print("\n".join(rows) or f"| vLLM in-process | failed: {row.stderr.strip()[-300:]} |")
    else:
        print(f"\nvLLM in-process is not measured: no vLLM environment at {args.vllm_python}")


if __name__ == "__main__":
    main()
