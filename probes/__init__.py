"""Measurements that run models: perplexity now; probe suites, pass@k, regression and safety sets next.

Importing this package does not import torch; `probes.perplexity` does when it runs.
"""

from probes.results import DocNLL, NLLMeasurement

__all__ = ["DocNLL", "NLLMeasurement"]
