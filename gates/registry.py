"""The gate registry: a gate is a registered pair of (what to measure, how to decide).

    @gate("perplexity", params=PerplexityParams, requests=lambda p: [...])
    def perplexity(p: PerplexityParams, ctx: GateContext) -> GateResult: ...

`params` is a frozen dataclass whose fields are exactly the keys allowed in `[gates.NAME]`
(plus `required`, common to every gate); field metadata carries the help text, and `path: True`
marks data-file keys. Deciding is pure: no I/O, no model, only `ctx`'s measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gates.types import GateResult
from harness.core.kinds import MeasureRequest  # defined beside the measurement kinds; imported from here by gates
from harness.core.plugins import load_plugins, plugin_failures


def probe_request(
    data: str,
    *,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 128,
    stop: tuple[str, ...] = (),
    seed: int = 0,
    batch_size: int = 64,
) -> MeasureRequest:
    """Sample and check a probe suite (the options are exactly what the `probes` measurement takes)."""
    opts = (
        ("n", n),
        ("temperature", temperature),
        ("top_p", top_p),
        ("max_new_tokens", max_new_tokens),
        ("stop", tuple(stop)),
        ("seed", seed),
        ("batch_size", batch_size),
    )
    return MeasureRequest("probes", data, opts)


@dataclass(frozen=True)
class PlanInfo:
    """What the rest of the release config measures on: for gates about the data itself (contamination)."""

    data: tuple[str, ...] = ()  # every data set the other gates read
    train: tuple[str, ...] = ()  # training data: [fine_tune] and the adapter's training manifests


@dataclass(frozen=True)
class GateContext:
    """What a gate may read: its measurements, the run's seed and whether the gate is required. `reference` is the
    word its explanations use for the model the candidate is compared with (the variant keyed "base" in
    `measurements`): "base" when that is the base model, "reference" when it is another model (a registry release,
    an adapter, a full checkpoint)."""

    name: str
    required: bool
    seed: int
    measurements: Mapping[tuple[MeasureRequest, str], Any] = field(default_factory=dict)
    requests: tuple[MeasureRequest, ...] = ()  # this gate's planned requests
    looks: tuple[int, ...] = ()  # sequential gates: item counts of the planned looks
    look: int = 0  # sequential gates: index of this look in `looks`
    sizes: Mapping[str, int] = field(default_factory=dict)  # items in each data set the plan reads
    reference: str = "base"  # the word for the compared model in explanations ("base" | "reference")

    @property
    def final_look(self) -> bool:
        return self.look >= len(self.looks) - 1

    def find(self, request: MeasureRequest, variant: str) -> Any | None:
        """The measurement if there is one (power estimates work with whatever the cache holds)."""
        return self.measurements.get((request, variant))

    def get(self, request: MeasureRequest, variant: str) -> Any:
        try:
            return self.measurements[(request, variant)]
        except KeyError:
            raise LookupError(f"no {request.kind!r} measurement of {variant} on {request.data}") from None


Decide = Callable[[Any, GateContext], GateResult]


@dataclass(frozen=True)
class Sequential:
    """A gate that may look again on more items when it cannot decide yet (see `gates.stats.look_levels`).

    `data(p)` is the (kind, data) whose item count bounds the looks (or a list of them: the smallest bounds);
    `looks(p, available)` the item counts at each look; `requests(p, n)` what to measure for the first n items
    (cached per slice, so a later look measures only the new items)."""

    data: Callable[[Any], tuple[str, str] | list[tuple[str, str]] | None]  # None: not sequential as configured
    looks: Callable[[Any, int], tuple[int, ...]]
    requests: Callable[[Any, int], list[MeasureRequest]]


@dataclass(frozen=True)
class GateDef:
    name: str
    params: type
    requests: Callable[[Any], list[MeasureRequest]]
    decide: Decide
    doc: str = ""
    plan: Callable[[Any, PlanInfo], list[MeasureRequest]] | None = None  # replaces `requests` when set
    sequential: Sequential | None = None
    power: Callable[[Any, GateContext], list[Any]] | None = None  # -> list[gates.stats.Power]
    only_for: tuple[str, ...] | None = None  # candidate forms the gate applies to (CANDIDATE_FORMS); None: every form
    reason_na: str = ""  # why the gate does not apply to the other forms


CANDIDATE_FORMS = ("adapter", "full")  # an adapter on the base; a full (or merged) checkpoint

_REGISTRY: dict[str, GateDef] = {}


def gate(
    name: str,
    *,
    params: type,
    requests: Callable[[Any], list[MeasureRequest]],
    plan: Callable[[Any, PlanInfo], list[MeasureRequest]] | None = None,
    sequential: Sequential | None = None,
    power: Callable[[Any, GateContext], list[Any]] | None = None,
    only_for: tuple[str, ...] | None = None,
    reason_na: str = "",
) -> Callable[[Decide], Decide]:
    """Register a gate under `name` (the stable name used by configs, reports and pytest ids). `plan`, when
    given, sees what the other gates measure (PlanInfo) and returns this gate's requests. `sequential` lets
    the gate look again on more items; `power(p, ctx)` says what its intervals can resolve from whatever
    measurements `ctx` holds (the base's alone, both, or none: a stated prior). `only_for` names the candidate
    forms (CANDIDATE_FORMS) the gate has a question for; for any other form it is `n/a` with `reason_na`."""
    if only_for is not None:
        only_for = tuple(only_for)
        bad = [f for f in only_for if f not in CANDIDATE_FORMS]
        if bad or not only_for:
            raise ValueError(f"gate {name!r}: only_for must name some of {CANDIDATE_FORMS}, got {only_for!r}")

    def register(fn: Decide) -> Decide:
        if name in _REGISTRY:
            raise ValueError(f"gate {name!r} is already registered")
        _REGISTRY[name] = GateDef(
            name,
            params,
            requests,
            fn,
            (fn.__doc__ or "").strip(),
            plan,
            sequential,
            power,
            only_for,
            reason_na.strip().rstrip("."),
        )
        return fn

    return register


def not_applicable(gate_def: GateDef | str, candidate_form: str) -> str | None:
    """Why the gate has no question for a candidate of `candidate_form` ("adapter" | "full"; any form outside the
    gate's `only_for` is not applicable), or None when it applies (make the result with `GateResult.not_applicable`)."""
    gdef = get_gate(gate_def) if isinstance(gate_def, str) else gate_def
    if gdef.only_for is None or candidate_form in gdef.only_for:
        return None
    return gdef.reason_na or (
        f"the gate applies only to a candidate of form {' or '.join(repr(f) for f in gdef.only_for)}; "
        f"this candidate's form is {candidate_form!r}"
    )


GROUP = "harness.gates"  # the entry-point group a package adds its gates through (see harness.core.plugins)


def get_gate(name: str) -> GateDef:
    load_plugins(GROUP)
    if name not in _REGISTRY:
        failed = plugin_failures(GROUP)
        raise KeyError(f"unknown gate {name!r}; known: {', '.join(gate_names())}" + (f" ({failed})" if failed else ""))
    return _REGISTRY[name]


def gate_names() -> list[str]:
    """Every registered gate: the built-in ones, then those of installed plugins."""
    load_plugins(GROUP)
    return sorted(_REGISTRY)
