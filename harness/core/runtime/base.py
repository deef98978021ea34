"""The runtime protocol: the one interface every model call goes through (generation, log-likelihoods, logits).

A runtime is one variant of one model (`base`, `candidate` = base + adapter, `merged`, `gguf`) in one engine
(`hf`: in-process transformers + peft). Gates never hold a runtime; measurements do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, str]
# a conversation (rendered with the runtime's chat template, generation prompt added) or prompt token ids
Prompt = list[Message] | list[int]


@dataclass(frozen=True)
class GenParams:
    """How to generate. `temperature` 0 is greedy (one answer computed, copied `n` times)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    min_new_tokens: int = 0  # > 0: a fixed number of tokens (latency measurements)
    seed: int = 0  # torch seed of the first batch; batch b uses seed + b
    stop: tuple[str, ...] = ()  # stop strings: generation ends at one and the text is cut before it
    # which token ids end an answer: "turn" = the chat template's end of turn (and EOS), "config" = the model's
    # own generation config (what a deployed model does), or explicit ids
    eos: Literal["turn", "config"] | tuple[int, ...] = "turn"
    logprobs: bool = False  # keep each generated token's log-probability distribution (top_logprobs)
    top_logprobs: int = 0


@dataclass(frozen=True)
class Completion:
    text: str  # decoded without special tokens, cut at the first stop string
    token_ids: tuple[int, ...]  # the generated ids, the final end-of-answer id included, padding excluded
    finish_reason: Literal["stop", "length"]
    raw: str = ""  # decoded with special tokens, before any stop-string cut
    length: int = 0  # generated tokens, the end-of-answer id excluded (the answer's length)
    logprobs: list[dict[str, Any]] | None = field(default=None, compare=False)  # per token (OpenAI shape)


@dataclass(frozen=True)
class LoglikRequest:
    """Token ids and which next-token targets count: `scored[i]` scores token i + 1 given tokens 0..i."""

    ids: list[int]
    scored: list[bool]


@dataclass(frozen=True)
class Identity:
    """What a runtime's outputs depend on (for cache keys and manifests); never a secret."""

    engine: str
    model: str  # base weights id / hash
    adapter: str | None = None  # adapter sha256
    tokenizer: str | None = None  # tokenizer + chat template hash
    dtype: str | None = None


class Runtime(Protocol):
    tok: Any  # the local tokenizer the runtime's ids are in (token counts, bits per byte)

    def context_length(self) -> int | None:
        """The longest sequence the model takes, if it says."""
        ...

    def generate(
        self, prompts: Sequence[Prompt], params: GenParams, *, batch_size: int = 64, description: str | None = None
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt, in prompt order."""
        ...

    def loglik(
        self, requests: Sequence[LoglikRequest], *, batch_size: int = 8, description: str | None = None
    ) -> list[float]:
        """Summed log-probability of each request's scored targets, in request order."""
        ...

    def generate_one(self, prompt: Prompt, params: GenParams) -> Completion:
        """The first completion of one prompt, generated alone (no batch, no padding)."""
        ...

    def logits(self, ids: Sequence[int]) -> Any:
        """Next-token logits at every position of `ids` (float32, [len(ids), vocab])."""
        ...

    def identity(self) -> Identity: ...

    def close(self) -> None: ...


def encode_prompt(tok: Any, prompt: Prompt) -> list[int]:
    """A prompt's token ids: a conversation rendered with the tokenizer's chat template (generation prompt added),
    or token ids as they are. Every runtime renders prompts this way, so all engines see the same ids."""
    if prompt and isinstance(prompt[0], dict):
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return tok(text, add_special_tokens=False)["input_ids"]
    return list(prompt)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]
