"""Measurements that run models: perplexity now; probe suites, pass@k, regression and safety sets next.

Importing this package does not import torch; `probes.perplexity` does when it runs.
"""

from probes.checkers import CheckResult, check, validate_spec
from probes.passk import pass_at_k, pass_hat_k
from probes.results import DocNLL, NLLMeasurement, ProbeOutcome, ProbeRun
from probes.suites import ProbeItem, Suite, load_suite

__all__ = [
    "CheckResult",
    "DocNLL",
    "NLLMeasurement",
    "ProbeItem",
    "ProbeOutcome",
    "ProbeRun",
    "Suite",
    "check",
    "load_suite",
    "pass_at_k",
    "pass_hat_k",
    "validate_spec",
]
