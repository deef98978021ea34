"""`hf`: an in-process transformers (+ peft) model as a runtime. The package's one `model.generate` call.

Batched with left padding and the KV cache under `inference_mode` (64 sequences a batch by default, halved while
a batch does not fit); device and dtype are the loaded model's.
Stops are applied in one place: end-of-answer ids (`GenParams.eos`) and stop strings (ended by transformers,
then cut from the text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.core.chat import end_of_turn_ids
from harness.core.console import progress
from harness.core.runtime.base import (
    Completion,
    GenParams,
    Identity,
    LoglikRequest,
    Prompt,
    encode_prompt,
    truncate_at_stop,
)
from harness.core.runtime.registry import Backend, backend


class HFRuntime:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        identity: Identity | None = None,
        progress: bool = True,
        adapter_off: bool = False,
        adapter_name: str | None = None,
    ):
        self.model = model
        self.tok = tokenizer
        self._identity = identity or Identity("hf", getattr(model, "name_or_path", "model"))
        self._progress = progress
        self.adapter_off = adapter_off  # a PeftModel shared with the candidate, answering as its base
        self.adapter_name = adapter_name  # the adapter of a PeftModel that holds several: switched on per call

    def _mode(self) -> Any:
        """No autograd, and the adapter switched off when this runtime is the base of a shared PeftModel."""
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.adapter_off:
            stack.enter_context(self.model.disable_adapter())
        elif self.adapter_name is not None and self.model.active_adapter != self.adapter_name:
            self.model.set_adapter(self.adapter_name)
        return stack

    # -- protocol ---------------------------------------------------------------------------------
    def identity(self) -> Identity:
        return self._identity

    def close(self) -> None:
        self.model = None

    def context_length(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def logits(self, ids: Sequence[int]) -> Any:
        import torch

        with self._mode():
            x = torch.tensor([list(ids)], device=self._device())
            return self.model(x).logits[0].float()

    def loglik(
        self, requests: Sequence[LoglikRequest], *, batch_size: int = 8, description: str | None = None
    ) -> list[float]:
        """Summed log-probability of each request's scored targets (`scored[i]` counts token i + 1 given tokens
        0..i), batched in the order given with right padding; the LM head runs only at positions where some row
        of the batch has a scored target (a chat answer is a few tokens of a long row)."""
        import torch

        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        device = self._device()
        out: list[float] = []
        show = self._progress and description is not None
        with progress(disable=not show) as bar, self._mode():
            task = bar.add_task(description or "scoring", total=len(requests))
            for b in range(0, len(requests), batch_size):
                batch = requests[b : b + batch_size]
                width = max(len(r.ids) for r in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attn = torch.zeros((len(batch), width), dtype=torch.long)
                tmask = torch.zeros((len(batch), width - 1), dtype=torch.bool)
                for row, r in enumerate(batch):
                    ids[row, : len(r.ids)] = torch.tensor(r.ids)
                    attn[row, : len(r.ids)] = 1
                    tmask[row, : len(r.scored)] = torch.tensor(r.scored)
                ids, attn, tmask = ids.to(device), attn.to(device), tmask.to(device)
                keep = tmask.any(dim=0).nonzero().squeeze(1)
                logits = self._logits_at(ids, attn, keep).float()
                # log p = logit - logsumexp: float32 log_softmax / cross_entropy on CPU (AVX2) is biased by ~3e-5
                # nats a token against float64; logsumexp is exact to ~1e-7 (tests/test_perplexity_measure.py)
                target = logits.gather(-1, ids[:, keep + 1].unsqueeze(-1)).squeeze(-1)
                token_nll = logits.logsumexp(dim=-1) - target
                out += (-(token_nll * tmask[:, keep]).sum(dim=1)).tolist()
                bar.advance(task, len(batch))
        return out

    def _logits_at(self, ids: Any, attn: Any, keep: Any) -> Any:
        """Logits at positions `keep` (for the next token); the whole sequence when the model cannot select."""
        if len(keep) < ids.shape[1] - 1:
            try:
                return self.model(input_ids=ids, attention_mask=attn, logits_to_keep=keep).logits
            except TypeError:  # a model class without `logits_to_keep`
                pass
        return self.model(input_ids=ids, attention_mask=attn).logits[:, keep]

    def generate(
        self, prompts: Sequence[Prompt], params: GenParams, *, batch_size: int = 64, description: str | None = None
    ) -> list[list[Completion]]:
        import torch

        ids = [self.encode(p) for p in prompts]
        greedy = params.temperature == 0
        per_prompt = 1 if greedy else params.n
        per_batch = max(1, batch_size // per_prompt)
        eos = self.eos_ids(params.eos)
        out: list[list[Completion]] = []
        show = self._progress and description is not None
        with progress(disable=not show) as bar, self._mode():
            task = bar.add_task(description or "generating", total=len(ids))
            for b, start in enumerate(range(0, len(ids), per_batch)):
                chunk = ids[start : start + per_batch]
                torch.manual_seed(params.seed + b)
                rows = self._generate_fitting(chunk, params, greedy, per_prompt, eos)
                for i in range(len(chunk)):
                    outs = rows[i * per_prompt : (i + 1) * per_prompt]
                    out.append(outs * params.n if greedy else outs)
                bar.advance(task, len(chunk))
        return out

    def generate_one(self, prompt: Prompt, params: GenParams) -> Completion:
        return self.generate([prompt], params, batch_size=1)[0][0]

    # -- helpers ----------------------------------------------------------------------------------
    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tok, prompt)

    def eos_ids(self, eos: str | tuple[int, ...]) -> list[int]:
        if eos == "turn":
            return sorted(end_of_turn_ids(self.tok))
        if eos == "config":
            cfg = self.model.generation_config.eos_token_id
            return [] if cfg is None else sorted(cfg if isinstance(cfg, list) else [cfg])
        return list(eos)

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def _generate_fitting(
        self, chunk: list[list[int]], params: GenParams, greedy: bool, per_prompt: int, eos: list[int]
    ) -> list[Completion]:
        """`_generate`, in halves while a batch does not fit the device's memory (the default batch of 64 is
        sized for small models; a large model on a small GPU answers in smaller batches rather than failing)."""
        import torch

        try:
            return self._generate(chunk, params, greedy, per_prompt, eos)
        except torch.OutOfMemoryError:
            if len(chunk) == 1:
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(chunk) // 2
        first = self._generate_fitting(chunk[:half], params, greedy, per_prompt, eos)
        return first + self._generate_fitting(chunk[half:], params, greedy, per_prompt, eos)

    def _generate(
        self, chunk: list[list[int]], params: GenParams, greedy: bool, per_prompt: int, eos: list[int]
    ) -> list[Completion]:
        import torch

        pad = self.tok.pad_token_id
        width = max(len(x) for x in chunk)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk], device=self._device())
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk], device=self._device())
        kw: dict[str, Any] = {}
        if params.eos != "config":  # else the model's generation config decides, as a deployment would
            kw["eos_token_id"] = eos
        if params.min_new_tokens:
            kw["min_new_tokens"] = params.min_new_tokens
        if params.stop:
            kw.update(stop_strings=list(params.stop), tokenizer=self.tok)
        if params.logprobs:
            kw.update(output_logits=True, return_dict_in_generate=True)
        gen = self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            do_sample=not greedy,
            temperature=None if greedy else params.temperature,
            top_p=None if greedy else params.top_p,
            top_k=None,
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=per_prompt,
            pad_token_id=pad,
            use_cache=True,
            **kw,
        )
        seqs = gen.sequences if params.logprobs else gen
        new = seqs[:, width:].tolist()
        rows = []
        for r, toks in enumerate(new):
            toks = _trim(toks, eos, pad)
            raw = self.tok.decode(toks, skip_special_tokens=False)
            text = self.tok.decode(toks, skip_special_tokens=True)
            cut = truncate_at_stop(text, params.stop)
            ended = bool(toks) and toks[-1] in eos
            lp = self._logprobs(toks, gen.logits, r, params.top_logprobs, eos) if params.logprobs else None
            reason = "stop" if ended or len(cut) < len(text) else "length"
            rows.append(Completion(cut, tuple(toks), reason, raw, len(toks) - ended, lp))
        return rows

    def _logprobs(self, toks: list[int], logits: tuple, row: int, top: int, eos: list[int]) -> list[dict[str, Any]]:
        import torch

        def entry(i: int, logp: Any) -> dict[str, Any]:
            s = self.tok.decode([i])
            return {"token": s, "logprob": float(logp[i]), "bytes": list(s.encode("utf-8"))}

        rows = []
        for tok_id, step in zip(toks, logits, strict=False):
            if tok_id in eos:
                break
            logp = torch.log_softmax(step[row].float(), dim=-1)
            e = entry(tok_id, logp)
            e["top_logprobs"] = [entry(int(i), logp) for i in torch.topk(logp, top).indices] if top else []
            rows.append(e)
        return rows


def _trim(toks: list[int], eos: list[int], pad: int | None) -> list[int]:
    """The generated ids up to and including the first end-of-answer id; a row that stopped early in a batch
    is padded after that (or after its stop string), and the padding is not part of the answer."""
    for i, t in enumerate(toks):
        if t in eos:
            return toks[: i + 1]
    if pad is not None and pad not in eos:
        while toks and toks[-1] == pad:
            toks = toks[:-1]
    return toks


@backend("hf")
class HFBackend(Backend):
    """Reference and candidate in this process: one loaded base, each adapter attached under its own name."""

    help = "In-process transformers (+ peft for adapters); the default"

    def open(self, variant: str, dtype: str | None = None) -> HFRuntime:
        return self.runtimes.shared(variant, dtype)

    def engine_key(self, variant: str) -> Any:
        return None  # the hashed weights, tokenizer and dtype say it all
