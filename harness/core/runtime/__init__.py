"""One interface for every model call (see `base.Runtime`), and the backends that provide it (see `registry`):
`hf` (in-process transformers), `vllm` (vLLM's engine in-process), `openai` (an OpenAI-compatible server); each
engine module registers its backend when imported, so importing this package registers the built-in ones."""

from harness.core.runtime.base import Completion, GenParams, Identity, LoglikRequest, Prompt, Runtime, truncate_at_stop
from harness.core.runtime.hf import HFRuntime
from harness.core.runtime.registry import Backend, Setup, backend, backend_names, get_backend

# the built-in backends, registered by importing their modules (no heavy import: vllm and openai load on use)
from harness.core.runtime import openai, vllm  # noqa: E402, F401  isort: skip

__all__ = [
    "Backend",
    "Completion",
    "GenParams",
    "HFRuntime",
    "Identity",
    "LoglikRequest",
    "Prompt",
    "Runtime",
    "Setup",
    "backend",
    "backend_names",
    "get_backend",
    "truncate_at_stop",
]
