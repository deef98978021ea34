"""Runtime backends: where reference and candidate answer (`[model] backend`). Each backend is one module that
registers a `Backend` subclass with `@backend("name")`: the [model] keys it reads (its `Options` dataclass, help in
the field metadata, shown by `harness gates` and docs/config.md), their checks (`validate`, when the config is
read), its preflight (`prepare`, before any gate runs) and how it opens a variant (`open`). Built in: `hf`
(in-process transformers), `vllm` (vLLM's engine in-process), `openai` (an OpenAI-compatible server). A package
adds one through the `harness.backends` entry-point group (see `harness.core.plugins`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.core.errors import HarnessError
from harness.core.forms import Form
from harness.core.plugins import load_plugins, plugin_failures

GROUP = "harness.backends"


@dataclass(frozen=True)
class Setup:
    """What a backend's `prepare` reads, before any gate runs."""

    options: Any  # the backend's Options, built from its [model] keys (None when it has none)
    reference: Form
    candidate: Form
    where: str  # "<config> [model]": errors name it with the key
    needs_loglik: bool  # a planned measurement reads log-likelihoods
    check: bool  # measuring follows: check what measuring needs (False when planning or replaying a run)


class Backend:
    """How the reference and the candidate answer. Subclass it, give it `help` (one line) and, when it reads
    [model] keys, an `Options` dataclass, and register it with `@backend("name")`.

    `Runtimes` makes one per run, `Backend(runtimes, state)` with what `prepare` returned, and asks it for the
    `base` (the reference) and `candidate` runtimes; merged and GGUF artifacts, and measurements that compare
    logits, are always opened in-process (`runtimes.shared(variant)`)."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    Options: ClassVar[type | None] = None

    @classmethod
    def validate(cls, options: Any, *, reference: str) -> list[tuple[str, str]]:
        """Problems with this backend's keys, as (key, what is wrong), when the config is read."""
        return []

    @classmethod
    def prepare(cls, setup: Setup) -> Any:
        """Checks before any gate runs (exit 2 on failure, naming the key); returns the state `open` reads."""
        return setup.options

    def __init__(self, runtimes: Any, state: Any):
        self.runtimes, self.state = runtimes, state

    def open(self, variant: str, dtype: str | None = None) -> Any:
        """The runtime of `base` (the reference) or `candidate`; `dtype`: a measurement's own (the release checks
        compare in float32), which an engine that sets its own dtype may ignore."""
        raise NotImplementedError

    def engine_key(self, variant: str) -> Any:
        """What a variant's cache key adds to its fingerprint: None when the hashed weights say it all."""
        return {"engine": self.name}

    def describe(self, variant: str) -> dict[str, Any]:
        """Which engine answered `variant`, for the manifest and the report."""
        return {"engine": self.name, "device": self.runtimes.device}

    def close(self) -> None:
        """Free what `open` started (an engine, a pool)."""


_BACKENDS: dict[str, type[Backend]] = {}


def backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Register a backend class under `name` (`[model] backend = "name"`)."""

    def register(cls: type[Backend]) -> type[Backend]:
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise TypeError(f"@backend({name!r}) decorates a subclass of harness.core.runtime.registry.Backend")
        if name in _BACKENDS and _BACKENDS[name] is not cls:
            raise ValueError(
                f"backend {name!r} is already registered by {_BACKENDS[name].__module__}; {cls.__module__} "
                "registers it again"
            )
        if cls.Options is not None and not dataclasses.is_dataclass(cls.Options):
            raise TypeError(f"backend {name!r}: Options must be a dataclass (its fields are the [model] keys)")
        cls.name = name
        _BACKENDS[name] = cls
        return cls

    return register


def backend_names() -> list[str]:
    load_plugins(GROUP)
    return sorted(_BACKENDS, key=lambda n: (n not in ("hf", "vllm", "openai"), n))


def get_backend(name: str) -> type[Backend]:
    """The backend registered as `name`; a HarnessError naming the known ones (and any plugin that failed)."""
    names = backend_names()
    if name not in _BACKENDS:
        failed = plugin_failures(GROUP)
        raise HarnessError(
            f"unknown backend {name!r}; known: {', '.join(names)}" + (f" ({failed})" if failed else ""),
            where="[model] backend",
            fix="use one of the known backends, or install the package that provides it",
        )
    return _BACKENDS[name]


def option_keys() -> dict[str, str]:
    """Every backend's [model] keys: key -> the backend that reads it."""
    return {f.name: n for n in backend_names() for f in dataclasses.fields(_BACKENDS[n].Options or _NoOptions)}


@dataclass(frozen=True)
class _NoOptions:
    pass
