"""Batched sampling (the harness) vs a one-sample-at-a-time `generate` loop, same prompts and model.

    python benchmarks/sampling_throughput.py [--prompts 8] [--n 5] [--max-new-tokens 32]

Prompts are the demo's triage probes asked of the embedded SmolLM2-135M-Instruct (the base model, whose
answers run long, so both sides generate about max_new_tokens). tokens/s counts generated tokens up to
and including the end-of-turn token.
"""

from __future__ import annotations

import argparse
import time


def count_tokens(tok, texts: list[str]) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()

    import torch

    from harness.core.chat import end_of_turn_ids
    from harness.core.models import load_base_model, load_tokenizer, resolve_base
    from probes.sampling import SamplingParams, sample
    from probes.suites import load_suite

    base = resolve_base("smollm2-135m-instruct")
    model, tok = load_base_model(base), load_tokenizer(base.dir)
    convs = [list(i.messages) for i in load_suite("builtin:triage_probes").items[: args.prompts]]
    params = SamplingParams(n=args.n, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0)

    t0 = time.perf_counter()
    batched = sample(model, tok, convs, params, batch_size=args.prompts * args.n)
    t_batched = time.perf_counter() - t0
    tokens_batched = count_tokens(tok, [o for outs in batched for o in outs])

    eos = sorted(end_of_turn_ids(tok))
    t0 = time.perf_counter()
    loop = []
    with torch.inference_mode():
        for conv in convs:
            text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            for _ in range(args.n):
                out = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=0.8,
                    top_p=0.95,
                    top_k=None,
                    max_new_tokens=args.max_new_tokens,
                    eos_token_id=eos,
                    pad_token_id=tok.pad_token_id,
                )
                loop.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    t_loop = time.perf_counter() - t0
    tokens_loop = count_tokens(tok, loop)

    b, s = tokens_batched / t_batched, tokens_loop / t_loop
    print(f"batched: {tokens_batched} tokens in {t_batched:.1f} s = {b:.1f} tokens/s")
    print(f"one at a time: {tokens_loop} tokens in {t_loop:.1f} s = {s:.1f} tokens/s")
    print(f"batched / one-at-a-time = {b / s:.2f}x (n={args.n}, {args.prompts} prompts)")


if __name__ == "__main__":
    main()
