"""Pure release decisions: measurements -> GateResult; the gate catalogue and the release policy."""

from gates import contamination as _contamination  # noqa: F401  (registers the gate)
from gates import judge as _judge  # noqa: F401  (registers the gate)
from gates import overfit as _overfit  # noqa: F401  (registers the gate)
from gates import pass_at_k as _pass_at_k  # noqa: F401  (registers the gate)
from gates import perplexity as _perplexity  # noqa: F401  (registers the gate)
from gates import regression as _regression  # noqa: F401  (registers the gate)
from gates import safety as _safety  # noqa: F401  (registers the gate)
from gates import shipping as _shipping  # noqa: F401  (registers the gates)
from gates.policy import blocking, release_verdict
from gates.registry import GateContext, GateDef, MeasureRequest, gate, gate_names, get_gate
from gates.stats import Decision, Interval, decide_non_inferiority, decide_superiority, paired_bootstrap
from gates.types import VERDICTS, Example, GateResult, Verdict

__all__ = [
    "VERDICTS",
    "Decision",
    "Example",
    "GateContext",
    "GateDef",
    "GateResult",
    "Interval",
    "MeasureRequest",
    "Verdict",
    "blocking",
    "decide_non_inferiority",
    "decide_superiority",
    "gate",
    "gate_names",
    "get_gate",
    "paired_bootstrap",
    "release_verdict",
]
