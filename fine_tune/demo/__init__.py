"""The demo's synthetic data: incident triage (`triage`), out-of-policy refusals and benign look-alikes
(`safety`), general replay rows (`general`); seeded, phrased apart from the gates' suites."""

from fine_tune.demo.triage import (
    CATEGORIES,
    SEVERITIES,
    TEMPLATES,
    TriageItem,
    demo_splits,
    generate,
    write_demo_data,
)

__all__ = ["CATEGORIES", "SEVERITIES", "TEMPLATES", "TriageItem", "demo_splits", "generate", "write_demo_data"]
