"""What ships: the adapter merged into full-precision base weights, and a GGUF written from that merge.

Merge: `merge_and_unload(safe_merge=True)` onto the float32 base (never onto 4-bit weights: merging into a
4-bit base re-quantises, peft#2321). For a QLoRA adapter both possible bases are recorded: the original
full-precision weights (what is merged) and the NF4-dequantised weights the adapter was trained against;
`merge(..., onto="dequantized")` merges onto the latter instead.

GGUF: written with the `gguf` package's `GGUFWriter` for llama-architecture models (F32, F16, Q8_0): the
hyper-parameters, every tensor under llama.cpp's names with Q/K rows permuted the way llama.cpp's rotary
embedding expects, the BPE tokenizer (tokens, types, merges, pre-tokenizer), special token ids and the chat
template. transformers reads it back with `gguf_file=` (which undoes the permutation).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.chat import end_of_turn_ids, template_eot_id
from harness.core.console import status
from harness.core.errors import HarnessError
from harness.core.models import load_base_model, load_tokenizer, tokenizer_dir
from harness.core.training_manifest import find_manifest

GGUF_TYPES = ("F32", "F16", "Q8_0")


@dataclass(frozen=True)
class Merged:
    dir: Path
    onto: str  # "full-precision" | "dequantized-nf4"
    dtype: str
    bases: dict[str, Any]  # what each candidate base is (for QLoRA, both)


def _atomic_dir(out: Path) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def merge(base: Any, adapter: Any, out: Path, *, onto: str = "full-precision") -> Merged:
    """Merge `adapter` (AdapterInfo) into `base` (BaseModel) and save safetensors + tokenizer + generation
    config to `out` (written to a temporary folder and renamed, so a crash leaves nothing half-written)."""
    import torch
    from peft import PeftModel

    out = Path(out)
    if out.exists():
        raise HarnessError("merge output exists", where=str(out), fix="choose a new output folder")
    qlora = adapter.peft_type == "LORA" and _trained_4bit(adapter)
    with status(f"Merging {adapter.dir.name} into {base.id} ({onto})"):
        model = load_base_model(base, device="cpu", dtype="float32")
        if onto == "dequantized-nf4":
            _dequantized_nf4_(model)
        peft = PeftModel.from_pretrained(model, adapter.dir, is_trainable=False)
        merged = peft.merge_and_unload(safe_merge=True)
        if any(
            getattr(p, "dtype", None) not in (torch.float32, torch.float16, torch.bfloat16) for p in merged.parameters()
        ):
            raise HarnessError("the merge is not in full precision", where=str(adapter.dir))
        tok = load_tokenizer(tokenizer_dir(base, adapter))
        tmp = _atomic_dir(out)
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        eot = end_of_turn_ids(tok)
        gen = merged.generation_config
        gen.eos_token_id = sorted(eot)
        gen.pad_token_id = tok.pad_token_id
        gen.save_pretrained(tmp)
        bases = {"merged_onto": onto, "full_precision": {"id": base.id, "dir": str(base.dir)}}
        if qlora:
            bases["dequantized_nf4"] = (
                "the NF4 weights the adapter was trained against: merge(..., onto='dequantized-nf4')"
            )
        (tmp / "harness_merge.json").write_text(
            json.dumps({"adapter": str(adapter.dir), "adapter_sha256": adapter.sha256, **bases}, indent=2)
        )
        tmp.rename(out)
    return Merged(out, onto, "float32", bases)


def _trained_4bit(adapter: Any) -> bool:
    m = find_manifest(adapter.dir)
    return m is not None and m.qlora


def _dequantized_nf4_(model: Any) -> None:
    """Replace every Linear weight by its NF4 round trip (what QLoRA trained against), in place."""
    import bitsandbytes.functional as bnbf
    import torch

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear) and mod.weight.dim() == 2:
                q, state = bnbf.quantize_4bit(mod.weight.data.contiguous(), quant_type="nf4")
                mod.weight.data = bnbf.dequantize_4bit(q, state).to(mod.weight.dtype)


# ---------------------------------------------------------------- GGUF


def permute_qk(w: Any, n_head: int) -> Any:
    """HF's rotary layout -> llama.cpp's (the inverse of what transformers does when it reads a GGUF)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    if parts[:2] == ["model", "layers"]:
        layer, rest = parts[2], ".".join(parts[3:-1])
        if rest in _NAMES:
            return f"blk.{layer}.{_NAMES[rest]}.{parts[-1]}"
    raise HarnessError(f"tensor {hf} has no llama.cpp name", fix="GGUF export supports llama-architecture models")


def _tokenizer_vocab(tok: Any) -> tuple[list[str], list[int], list[str]]:
    import gguf

    data = json.loads(tok.backend_tokenizer.to_str())
    model = data["model"]
    if model.get("type") != "BPE":
        raise HarnessError(
            f"GGUF export supports BPE tokenizers; this one is {model.get('type')}",
            fix="export with llama.cpp's convert_hf_to_gguf.py instead",
        )
    vocab: dict[str, int] = dict(model["vocab"])
    added = {t["content"]: t for t in data.get("added_tokens", [])}
    for content, t in added.items():
        vocab[content] = t["id"]
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for s, i in vocab.items():
        tokens[i] = s
        types[i] = gguf.TokenType.NORMAL
    for t in added.values():
        types[t["id"]] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, [int(x) for x in types], merges


def export_gguf(model_dir: Path, out: Path, qtype: str = "F16", *, permute: bool = True, pre: str = "smollm") -> Path:
    """Write `model_dir` (a merged llama model) as a GGUF of `qtype`. `permute=False` writes Q/K rows in HF's
    layout (what a naive converter does: the gguf_parity gate must catch it)."""
    import gguf
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    if qtype not in GGUF_TYPES:
        raise HarnessError(f"unknown GGUF type {qtype!r}", fix=f"use one of {', '.join(GGUF_TYPES)}")
    out = Path(out)
    if out.exists():
        raise HarnessError("GGUF output exists", where=str(out), fix="choose a new file name")
    cfg = AutoConfig.from_pretrained(model_dir)
    if cfg.model_type != "llama":
        raise HarnessError(f"GGUF export supports llama models; this is {cfg.model_type}", where=str(model_dir))
    tok = AutoTokenizer.from_pretrained(model_dir)
    state: dict[str, torch.Tensor] = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        state.update(load_file(f))
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    ftype = {
        "F32": gguf.LlamaFileType.ALL_F32,
        "F16": gguf.LlamaFileType.MOSTLY_F16,
        "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    tmp = out.with_name(out.name + ".tmp")
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name(Path(model_dir).name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(ftype[qtype])
    tokens, types, merges = _tokenizer_vocab(tok)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if tok.bos_token_id is not None:
        w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(template_eot_id(tok))
    if tok.pad_token_id is not None:
        w.add_pad_token_id(tok.pad_token_id)
    if tok.unk_token_id is not None:
        w.add_unk_token_id(tok.unk_token_id)
    w.add_add_bos_token(False)
    if tok.chat_template:
        w.add_chat_template(tok.chat_template)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, t in state.items():
        arr = t.to(torch.float32).numpy()
        if permute and name.endswith("self_attn.q_proj.weight"):
            arr = permute_qk(arr, cfg.num_attention_heads)
        elif permute and name.endswith("self_attn.k_proj.weight"):
            arr = permute_qk(arr, cfg.num_key_value_heads)
        if arr.ndim == 1 or qtype == "F32":
            w.add_tensor(gguf_name(name), arr.astype(np.float32))
        elif qtype == "F16":
            w.add_tensor(gguf_name(name), arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(gguf_name(name), q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.rename(out)
    return out
