"""Pure release decisions: measurements -> GateResult; the gate catalogue and the release policy."""

import importlib
import pkgutil

from gates.policy import blocking, not_applicable_gates, release_verdict
from gates.registry import (
    CANDIDATE_FORMS,
    GateContext,
    GateDef,
    MeasureRequest,
    gate,
    gate_names,
    get_gate,
    not_applicable,
)
from gates.stats import Decision, Interval, decide_non_inferiority, decide_superiority, paired_bootstrap
from gates.types import VERDICTS, Example, GateResult, Table, Verdict

# every other module of this package is a gate module: importing it registers its gate(s), so a new gate is one
# new file here and nothing else to edit
_SUPPORT = {"policy", "registry", "stats", "types"}
for _m in pkgutil.iter_modules(__path__):
    if _m.name not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "CANDIDATE_FORMS",
    "VERDICTS",
    "Decision",
    "Example",
    "GateContext",
    "GateDef",
    "GateResult",
    "Interval",
    "MeasureRequest",
    "Table",
    "Verdict",
    "blocking",
    "decide_non_inferiority",
    "decide_superiority",
    "gate",
    "gate_names",
    "get_gate",
    "not_applicable",
    "not_applicable_gates",
    "paired_bootstrap",
    "release_verdict",
]
