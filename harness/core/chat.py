"""Tokenizer facts every engine needs: which tokens end an assistant turn (what must stop generation and what SFT
must supervise), read from the tokenizer's own vocabulary and chat template."""

from __future__ import annotations

from typing import Any

# the end-of-turn markers of the chat templates in use (ChatML, Llama 3, Phi, Gemma, Llama 2/Mistral, GPT-2 style)
EOT_CANDIDATES = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>")


def end_of_turn_ids(tokenizer: Any) -> set[int]:
    """Every token id that can end a turn: EOS and each known end-of-turn marker in the vocabulary."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in EOT_CANDIDATES if t in vocab}
    return ids


def template_eot_id(tok: Any) -> int:
    """The token that ends an assistant turn in the chat template (what must stop generation), else EOS."""
    vocab = tok.get_vocab()
    for t in EOT_CANDIDATES:
        if t in vocab and tok.chat_template and t in tok.chat_template:
            return vocab[t]
    return tok.eos_token_id
