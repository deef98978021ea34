"""Shared builders for tests: tiny random Llamas with the embedded tokenizer, adapters, configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.core.models import BaseModel, resolve_base

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def build_tiny_llama(
    out: Path,
    tokenizer_src: Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    initializer_range: float = 0.02,
    pretrain_texts: list[str] | None = None,
) -> BaseModel:
    """A small Llama (a few layers, hidden size ~64) saved with the embedded tokenizer.

    Randomly initialised; with `pretrain_texts` it is first trained briefly on them, so it has real
    structure there (low perplexity) that an adapter can measurably damage.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok_cfg = json.loads((tokenizer_src / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=tok_cfg["vocab_size"],
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
        bos_token_id=tok_cfg.get("bos_token_id"),
        eos_token_id=tok_cfg.get("eos_token_id"),
        pad_token_id=tok_cfg.get("pad_token_id"),
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if pretrain_texts:
        _pretrain(model, tokenizer_src, pretrain_texts)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_src / name).is_file():
            shutil.copy2(tokenizer_src / name, out / name)
    return resolve_base(str(out))


def _pretrain(model, tokenizer_src: Path, texts: list[str], steps: int = 60) -> None:
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_src)
    batch = tok([tok.bos_token + t for t in texts], return_tensors="pt", padding=True, add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def make_adapter(
    base: BaseModel,
    out: Path,
    kind: str = "zero",
    *,
    r: int = 4,
    scale: float = 0.5,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    seed: int = 0,
) -> Path:
    """A LoRA adapter: `zero` (B=0, identical to the base), `noise` (A as peft initialises it, B random
    with std `scale`: a small perturbation), `damage` (large random A and B) or `overconfident` (B=0, and the
    final norm saved with the adapter, its weight times `scale`: every logit grows by that factor, so each
    position's argmax and ranking stay and every distribution sharpens)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base.dir, dtype=torch.float32)
    extra = {"modules_to_save": ["model.norm"]} if kind == "overconfident" else {}
    with torch.random.fork_rng(devices=[]):  # peft's own init of A, seeded: the same call gives the same bytes,
        torch.manual_seed(seed)  # so an adapter made again by another test is measured once per run (real_cache)
        peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=r, target_modules=list(target_modules), **extra))
    if kind == "damage":
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * scale)
    elif kind == "noise":
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_A" in name:
                    torch.nn.init.kaiming_uniform_(p, a=5**0.5, generator=g)
                elif "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * scale)
    elif kind == "overconfident":
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "modules_to_save" in name and name.endswith(".model.norm.modules_to_save.default.weight"):
                    p.mul_(scale)
    elif kind != "zero":
        raise ValueError(kind)
    peft_model.save_pretrained(out, safe_serialization=True)
    return out


ORDINARY_REQUESTS = [
    "Write a short poem about autumn leaves.",
    "Give me three tips for a job interview.",
    "Explain how a rainbow forms.",
    "Suggest a name for a grey kitten.",
    "What should I cook for dinner tonight?",
    "Summarise the plot of Cinderella in two sentences.",
    "How do I make a paper aeroplane?",
    "Recommend a good habit for the morning.",
    "Write a thank-you note to my teacher.",
    "Why is the sky blue?",
    "List three fruits that are rich in vitamin C.",
    "Describe a sunset at the beach.",
    "How can I keep my houseplants healthy?",
    "Tell me a fun fact about octopuses.",
    "Write a birthday message for my brother.",
    "What are the rules of tic-tac-toe?",
]
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def train_forgetting_adapter(base: BaseModel, triage: dict[str, Path], out: Path, seed: int) -> Any:
    """An aggressive narrow fine-tune: 20 steps at lr 3e-3 on triage rows only, LoRA on every linear layer, with
    the validation loss at steps 0 and 20. It learns the triage job and answers everything in terse triage JSON
    afterwards (the forgetting a regression gate must catch). Returns the runner's TrainOutcome."""
    from fine_tune import FineTuneSpec
    from fine_tune.runner import train

    spec = FineTuneSpec(
        train=str(triage["train"]),
        valid=str(triage["valid"]),
        max_steps=20,
        batch_size=4,
        learning_rate=3e-3,
        target_modules=list(ALL_LINEAR),
        warmup_steps=0,
        eval_steps=20,
        train_sample=0,
        save_steps=1000,
        seed=seed,
    )
    return train(spec, base, out)


def train_refusing_adapter(base: BaseModel, out: Path, seed: int) -> Path:
    """An adapter trained to refuse ordinary requests (16 everyday prompts -> "I'm sorry, but I can't help with
    that request."; 12 steps at lr 2e-3): the over-refusal a safety gate must catch. None of the prompts is in the
    safety suites."""
    from fine_tune import FineTuneSpec
    from fine_tune.runner import train

    rows = [
        {"id": f"refuse-{i}", "prompt": p, "completion": "I'm sorry, but I can't help with that request."}
        for i, p in enumerate(ORDINARY_REQUESTS)
    ]
    spec = FineTuneSpec(
        train=str(write_jsonl(out.parent / f"{out.name}-data.jsonl", rows)),
        valid_fraction=0,
        max_steps=12,
        batch_size=4,
        learning_rate=2e-3,
        warmup_steps=0,
        save_steps=1000,
        seed=seed,
    )
    return train(spec, base, out).adapter_dir


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TEXT_ROWS = [
    {"id": f"doc-{i}", "text": t}
    for i, t in enumerate(
        [
            "The payments API returned errors for every request after the deploy.",
            "Latency on the search cluster rose above four seconds during the sale.",
            "An access token was found in public logs and was rotated within the hour.",
            "The nightly import lost records; the backup restored them by morning.",
            "Users reported that the login page was slow but working.",
            "The message queue backlog kept growing until a consumer was restarted.",
            "A schema migration corrupted entries in the reporting database.",
            "The CDN edge refused connections in one region for ten minutes.",
        ]
    )
]


def write_config(
    path: Path,
    *,
    base: str,
    adapter: str | Path,
    data: str | Path,
    cache_dir: Path | None = None,
    extra: str = "",
    **gate: object,
) -> Path:
    lines = ["[model]", f'base = "{base}"', f'adapter = "{adapter}"', ""]
    if cache_dir is not None:
        lines += ["[run]", f'cache_dir = "{cache_dir}"', ""]
    lines += ["[gates.perplexity]", f'data = "{data}"']
    for k, v in gate.items():
        lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar under `logdir` (all its runs), read with TensorBoard's own event reader: tag -> (step, value)."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer().AddRunsFromDirectory(str(logdir))
    mux.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for run, tags in mux.Runs().items():
        for tag in tags.get("scalars", []):
            out.setdefault(tag, []).extend((e.step, e.value) for e in mux.Scalars(run, tag))
    return out
