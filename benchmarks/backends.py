"""The `hf` runtime next to vLLM's OpenAI server, side by side in one run, on the same machine.

    PYTHONPATH=. .venv/bin/python benchmarks/backends.py [--server http://127.0.0.1:8000/v1] [--n 10]

Measures, for the base model: the demo's pass@k sampling (every triage probe, n samples, 64 new tokens,
temperature 0.7) and perplexity on the demo's eval text. Without `--server`, it starts vLLM from `.venv-vllm`
(`make .venv-vllm/.installed`) and stops it afterwards. Prints the hardware each figure came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", help="a running vLLM server serving the embedded base as `base`")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    from fine_tune.demo.triage import write_demo_data
    from harness.data import load_dataset
    from harness.models import EMBEDDED_ALIAS, resolve_base
    from harness.release import vllm_server
    from harness.runtime import GenParams
    from harness.runtime.load import Runtimes, Served
    from probes.perplexity import nll
    from probes.suites import load_suite

    base = resolve_base(EMBEDDED_ALIAS)
    convs = [list(i.messages) for i in load_suite("builtin:triage_probes").items]
    text = load_dataset(write_demo_data(Path(tempfile.mkdtemp()))["eval"])
    server = None
    url = args.server
    if url is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = vllm_server.start(base.dir, {}, python=".venv-vllm/bin/python", port=port, max_model_len=1024)
        url = server.url
    params = GenParams(n=args.n, temperature=0.7, top_p=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    engines = {
        "hf (in-process transformers, batch 16)": Runtimes(base, None, dtype="float32").get("base"),
        f"vLLM server ({url})": Runtimes(base, None, served=Served(url, "base", "base")).get("base"),
    }
    hw = _hardware()
    print(f"base {base.id}; {len(convs)} triage probes x n = {args.n} x {args.max_new_tokens} tokens; PPL on "
          f"{len(text)} eval rows; hardware: {hw}\n")  # fmt: skip
    print("| engine | hardware | sampling wall s | generated tokens/s | PPL wall s | scored tokens/s | PPL |")
    print("|---|---|---|---|---|---|---|")
    try:
        for name, rt in engines.items():
            t = time.perf_counter()
            outs = rt.generate(convs, params, batch_size=16, description=f"sampling: {name}")
            gen_s = time.perf_counter() - t
            tokens = sum(len(c.token_ids) for o in outs for c in o)
            t = time.perf_counter()
            m = nll(rt, text, description=f"perplexity: {name}")
            ppl_s = time.perf_counter() - t
            print(
                f"| {name} | {hw} | {gen_s:.1f} | {tokens / gen_s:.1f} | {ppl_s:.1f} | "
                f"{m.total_tokens / ppl_s:.1f} | {m.perplexity:.4f} |",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
    print("\nvLLM in-process (vllm.LLM) is not measured: it runs in vLLM's own environment, not the harness's.")


if __name__ == "__main__":
    main()
