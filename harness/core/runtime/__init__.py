"""One interface for every model call (see `base.Runtime`), and the backends that provide it (see `registry`):
`hf` (in-process transformers), `vllm` (vLLM's engine in-process), `openai` (an OpenAI-compatible server); each
engine module registers its backend when imported. Importing this package imports every module in it, so a new
built-in backend is one new file here and nothing else to edit."""

import importlib
import pkgutil

from harness.core.runtime.base import Completion, GenParams, Identity, LoglikRequest, Prompt, Runtime, truncate_at_stop
from harness.core.runtime.hf import HFRuntime
from harness.core.runtime.registry import Backend, Setup, backend, backend_names, get_backend

# the built-in backends register themselves when their module is imported (none imports its engine at import
# time: vllm, openai and the like load when a run opens a variant)
for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

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
