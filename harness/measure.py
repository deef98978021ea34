"""The measurement kinds, all registered: importing this module imports every module that registers a built-in kind.

Each `MeasureRequest.kind` is a `harness.core.kinds.MeasureKind` (one calling convention: `run(MeasureCall) ->
result`, with its `load`/`dump`, `load_data`, cache-key `code`, ...), registered with `@kind("name", ...)` on its
run function beside the probe it runs:

    probes, answers     probes/sampling.py          nll             probes/perplexity.py
    choices             probes/choices.py           lmeval          probes/lmeval.py
    preference          probes/preference.py
    training_log        probes/training_log.py      contamination   probes/contamination.py
    judge               judges/run.py               audit           fine_tune/audit.py
    merge_parity, gguf_parity, template_drift, rollback             harness/release/shipping.py
    serving             harness/release/serving.py

To add a kind: decorate its `run(call)` with `@kind("name", load=..., dump=..., code=(...))` (from
`harness.core.kinds`) in the module that holds its logic, and name that module in `code` (its source is part of
the cache key: changed code, new measurement). A module new to this list is imported here (`REGISTERING`). A
module registers only what its own layer allows: a kind that needs something of a layer above gets it through
`MeasureCall` / `MeasureEnv`. A name registered twice is a ValueError naming both modules.
"""

from __future__ import annotations

import fine_tune.audit
import harness.release.serving
import harness.release.shipping
import judges.refusal
import judges.run
import probes.choices
import probes.contamination
import probes.lmeval
import probes.perplexity
import probes.preference
import probes.sampling
import probes.training_log
from harness.core.kinds import KINDS, MeasureCall, MeasureEnv, MeasureKind, get_kind
from probes.lmeval import lmeval_spec

__all__ = ["KINDS", "REGISTERING", "MeasureCall", "MeasureEnv", "MeasureKind", "get_kind", "lmeval_spec"]

# the modules that register the built-in kinds (imported for that effect)
REGISTERING = (
    probes.sampling,
    probes.perplexity,
    probes.choices,
    probes.preference,
    probes.lmeval,
    probes.training_log,
    probes.contamination,
    judges.run,
    judges.refusal,
    fine_tune.audit,
    harness.release.shipping,
    harness.release.serving,
)
