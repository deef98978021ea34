"""Measurement kinds: each `MeasureRequest.kind` is registered, with one calling convention, beside the probe (or
judge, audit, release check) it runs.

    @kind("nll", load=NLLMeasurement.from_dict, dump=to_dict, code=("probes.perplexity", ...))
    def _nll_kind(call: MeasureCall) -> NLLMeasurement: ...

A kind's `run(call: MeasureCall) -> result` gets everything it may use in `call`: the request, the variant it
measures, the data set loaded by the kind's `load_data`, the runtimes of the release (`call.runtime()` is the
variant's own), and, for a comparison of two variants (`pair`), the source measurement of each. It returns a
typed result that its `dump` / `load` (de)serialise. The pipeline caches every kind the same way, under
`harness.core.cache.measurement_key` (model identity, data hash, options, the measuring code's hash: the modules
named in `code`, so the module that holds a kind's run logic belongs there).

Variants: `base` and `candidate` measure one runtime each; `data` runs once per release (about the data, or
what ships: the merge, the GGUFs); `pair` runs once both variants of its source request are measured.

This module is the bottom layer: the registering modules (probes, judges, fine_tune, harness.release) import it,
and `harness.measure` imports every one of them, so every built-in kind is registered once it is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.cache import MeasurementCache
from harness.core.data import load_dataset
from harness.core.hashing import sha256_json, source_sha256


@dataclass(frozen=True)
class MeasureRequest:
    """One measurement the pipeline must make (and cache) for each of `variants`."""

    kind: str
    data: str
    options: tuple[tuple[str, Any], ...] = ()
    variants: tuple[str, ...] = ("base", "candidate")

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class MeasureEnv:
    """The release being measured: its models and files, shared by every measurement of a run. `base` and
    `adapter` are what ships (the candidate's weights, and its adapter when it is one: None for a full
    checkpoint); the variants' runtimes come from `runtimes`."""

    # harness.core.models and .runtime are not imported here: gates import this module (MeasureRequest), and must
    # not reach transformers or the runtimes, even through the function-level imports of harness.core.models
    base: Any  # harness.core.models.BaseModel
    adapter: Any  # harness.core.models.AdapterInfo | None
    runtimes: Any  # harness.core.runtime.load.Runtimes: variant -> runtime, opened on first use
    cache: MeasurementCache  # for the resumable parts of a long measurement (each judgement)
    base_dir: Path | None = None
    max_length: int = 512  # the training's max_length (the data audit's truncation check)


@dataclass(frozen=True)
class MeasureCall:
    """One measurement to make: what a kind's `run` reads."""

    request: MeasureRequest
    variant: str  # base | candidate | data | pair
    env: MeasureEnv
    data: Any = None  # what the kind's `load_data` read for `request.data` (None for kinds that read none)
    options: Mapping[str, Any] = field(default_factory=dict)  # the request's options, a look's slice taken out
    inputs: Mapping[str, Any] = field(default_factory=dict)  # pair: the source measurement of each variant
    description: str = ""

    def runtime(self, variant: str | None = None, *, dtype: str | None = None, local: bool = False) -> Any:
        """The runtime of `variant` (default: the one measured); `local`: in-process even when it is served."""
        return self.env.runtimes.get(variant or self.variant, dtype=dtype, local=local)


@dataclass(frozen=True)
class MeasureKind:
    """How one kind of measurement runs and is stored."""

    run: Callable[[MeasureCall], Any]
    load: Callable[[Any], Any]
    dump: Callable[[Any], Any]
    load_data: Callable[..., Any] | None = load_dataset  # (spec, base_dir, key=...) -> data; None: reads none
    runtime_options: frozenset[str] = frozenset()  # options that cannot change the result (not in the cache key)
    code: tuple[str, ...] = ()  # modules whose source is part of the cache key (a changed checker re-measures)
    cached: bool = True  # False: cheap reads of files that may change under the same name (a training log)
    keep: Callable[[Any], bool] = lambda value: True  # a result that depends on the environment is not kept
    preflight: Callable[[MeasureRequest, Path | None], None] | None = None  # before any model loads
    manifest_key: str | None = None  # the result is also recorded in the run manifest under this key
    # what else the result depends on, for the cache key (a judge model's identity: its weights or endpoint)
    identity: Callable[[MeasureRequest, Path | None], Any] | None = None
    shared_tokens: bool = False  # compares per-token numbers: reference and candidate must share a tokenizer
    timed: bool = False  # wall-clock figures (latency): measured last, once the run's helper processes have stopped

    def code_sha256(self) -> str:
        return sha256_json([source_sha256(m) for m in self.code])


KINDS: dict[str, MeasureKind] = {}
_REGISTERED_BY: dict[str, str] = {}  # kind -> the module that registered it


class UnknownKind(KeyError):
    """A measurement kind no module registered."""

    def __str__(self) -> str:  # KeyError's own str() is the repr of its argument
        return str(self.args[0]) if self.args else ""


def kind(name: str, **fields: Any) -> Callable[[Callable[[MeasureCall], Any]], Callable[[MeasureCall], Any]]:
    """Register the decorated `run(call)` as the measurement kind `name`; `fields` are the rest of `MeasureKind`
    (`load` and `dump` at least). One run function may serve several kinds (stack the decorators). A name that is
    already registered is a ValueError naming both modules."""

    def register(run: Callable[[MeasureCall], Any]) -> Callable[[MeasureCall], Any]:
        module = getattr(run, "__module__", None) or "?"
        if name in KINDS:
            first = _REGISTERED_BY.get(name) or getattr(KINDS[name].run, "__module__", None) or "?"
            raise ValueError(
                f"measurement kind {name!r} is already registered by {first}; {module} registers it again "
                "(a kind's name must be unique: pick another one)"
            )
        KINDS[name] = MeasureKind(run=run, **fields)
        _REGISTERED_BY[name] = module
        return run

    return register


def get_kind(name: str) -> MeasureKind:
    """The kind registered as `name`; an `UnknownKind` (a KeyError) naming the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(sorted(KINDS)) or "none (import harness.measure to register the built-in kinds)"
        raise UnknownKind(f"unknown measurement kind {name!r}; known: {known}") from None


def same_data_as(other: str) -> Callable[..., Any]:
    """A `load_data` that reads a request's data as the kind `other` does (looked up when it runs, so the two
    registering modules need not import each other): a judge reads the prompts its `answers` request read."""

    def load_data(spec: str, base_dir: Path | None = None, *, key: str | None = None) -> Any:
        data_kind = get_kind(other)
        if data_kind.load_data is None:
            raise ValueError(f"measurement kind {other!r} reads no data set")
        return data_kind.load_data(spec, base_dir, key=key)

    load_data.__qualname__ = f"same_data_as({other!r})"
    return load_data


def to_dict(result: Any) -> Any:
    """The `dump` of a typed result with `to_dict`."""
    return result.to_dict()


def as_is(value: Any) -> Any:
    """The `load` / `dump` of a result that is already plain JSON."""
    return value
