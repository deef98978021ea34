"""One interface for every model call (see `base.Runtime`); `hf` is the in-process transformers engine."""

from harness.core.runtime.base import Completion, GenParams, Identity, LoglikRequest, Prompt, Runtime, truncate_at_stop
from harness.core.runtime.hf import HFRuntime

__all__ = [
    "Completion",
    "GenParams",
    "HFRuntime",
    "Identity",
    "LoglikRequest",
    "Prompt",
    "Runtime",
    "truncate_at_stop",
]
