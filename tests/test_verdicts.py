"""Verdicts whose truth is known, on the real SmolLM2-135M-Instruct at the gates' defaults (slow).

- an identical adapter (B = 0) passes `regression` and `safety`;
- a small-noise adapter (B ~ N(0, 0.01)), no measurable change of ability, passes `regression` and `safety`, and
  `harness plan` then shows the safety rows resolving 5 points at the defaults by the paired sd it measured;
- an aggressive narrow fine-tune (triage rows only, lr 3e-3, all linear layers) fails `regression`;
- an adapter trained to refuse ordinary requests fails `safety` on benign over-refusal;
each decided the same way over three seeds (the adapter's seed where it is random, else the run's). And against
last release instead of the base (v1 = the small-noise adapter of seed 0, read back from the module's cache):
- v1's own weights shipped as a merged full checkpoint pass `regression` and `safety` against v1;
- the forgetting fine-tune of seed 0 (its measurements cached too) fails `regression` against v1.
The judge that always answers "A" is in tests/test_judge.py (a real HTTP judge on loopback).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.types import GateResult
from harness.pipeline import plan_power, run
from tests.helpers import make_adapter, train_refusing_adapter

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def cache(real_cache) -> Path:
    """The run's real-model cache: the base is measured once, each candidate once."""
    return real_cache


def _gates(
    tmp: Path, adapter: Path, cache: Path, gates: str, seed: int = 1234, reference: str = "base"
) -> dict[str, GateResult]:
    cfg = tmp / f"release-{seed}.toml"
    cfg.write_text(
        f'[model]\nbase = "smollm2-135m-instruct"\ncandidate = "{adapter}"\nreference = "{reference}"\n\n'
        f'[run]\nseed = {seed}\ncache_dir = "{cache}"\n\n{gates}'
    )
    return {g.name: g for g in run(cfg).report.gates}


def test_identical_adapter_passes_regression_and_safety(tmp_path, embedded_base, cache):
    adapter = make_adapter(embedded_base, tmp_path / "zero", "zero", r=8)
    for seed in SEEDS:
        g = _gates(tmp_path, adapter, cache, "[gates.regression]\n[gates.safety]\n", seed=seed)
        reg, safe = g["regression"], g["safety"]
        assert reg.verdict == "pass" and reg.delta == 0.0 and reg.ci == (0.0, 0.0), reg.explanation
        assert safe.verdict == "pass" and safe.delta == 0.0, safe.explanation
        assert safe.details["checks"]["leaks"] == "pass"


@pytest.mark.parametrize("seed", SEEDS)
def test_small_noise_adapter_passes_regression_and_safety_at_the_defaults(tmp_path, embedded_base, cache, seed):
    adapter = make_adapter(embedded_base, tmp_path / "noise", "noise", r=8, scale=0.01, seed=seed)
    g = _gates(tmp_path, adapter, cache, "[gates.regression]\n[gates.safety]\n")
    reg, safe = g["regression"], g["safety"]
    assert reg.verdict == "pass", reg.explanation
    assert reg.details["perplexity"]["relative_increase"] != 0.0  # it did change the model
    assert reg.ci[0] > -0.05 and reg.details["items"] in (100, 200, 300, 400)  # decided within the budget
    assert safe.verdict == "pass", safe.explanation  # decided, not inconclusive
    # `harness plan` on the same config after the run: at the defaults (600 prompts a suite at most) the paired sd
    # this candidate measured resolves the 5-point tolerance on both refusal rows
    _, table = plan_power(tmp_path / "release-1234.toml")
    rows = {p.measure: p for p in table["safety"]}
    for what in ("harmful-refusal rate", "benign over-refusal rate"):
        row = rows[what]
        assert row.sd_source == "paired" and row.items == 600 and row.resolves and row.half_width < 0.05, row


@pytest.mark.parametrize("seed", SEEDS)
def test_aggressive_narrow_fine_tune_fails_regression(tmp_path, embedded_base, cache, forgetting, seed):
    reg = _gates(tmp_path, forgetting(seed).adapter_dir, cache, "[gates.regression]\n")["regression"]
    assert reg.verdict == "fail", reg.explanation
    assert reg.candidate < reg.baseline and reg.ci[1] < 0  # fewer general answers right, and the interval says so
    assert reg.details["items"] in (100, 200, 300, 400)  # decided within the look budget


@pytest.mark.parametrize("seed", SEEDS)
def test_adapter_trained_to_refuse_ordinary_requests_fails_safety(tmp_path, embedded_base, cache, seed):
    adapter = train_refusing_adapter(embedded_base, tmp_path / "train", seed)
    # no leak suite: what this adapter changes is over-refusal (the leak checks are the tests above)
    safe = _gates(tmp_path, adapter, cache, '[gates.safety]\nleak_suite = ""\n')["safety"]
    assert safe.verdict == "fail", safe.explanation
    assert safe.details["checks"]["benign over-refusal vs base"] == "fail", safe.details["checks"]
    over = safe.details["over_refusal"]
    assert over["change_ci"][0] > 0.05 and over["candidate"] > over["base"]  # refuses look-alikes it used to answer


@pytest.fixture(scope="module")
def v1(tmp_path_factory, embedded_base) -> Path:
    """Last release: the small-noise adapter of seed 0 (the same bytes as above, so its numbers are cached)."""
    return make_adapter(embedded_base, tmp_path_factory.mktemp("v1") / "adapter", "noise", r=8, scale=0.01, seed=0)


def test_v1_against_its_own_merged_checkpoint_passes_regression_and_safety(tmp_path, embedded_base, cache, v1):
    from harness.core.models import check_adapter
    from harness.release.export import merge

    merged = merge(embedded_base, check_adapter(v1, embedded_base), tmp_path / "v1-merged").dir
    g = _gates(tmp_path, merged, cache, "[gates.regression]\n[gates.safety]\n", reference=str(v1))
    reg, safe = g["regression"], g["safety"]
    assert reg.verdict == "pass" and abs(reg.delta) <= 0.01, reg.explanation
    assert safe.verdict == "pass" and "reference" in safe.explanation, safe.explanation


def test_v1_against_a_forgetting_v2_fails_regression(tmp_path, cache, forgetting, v1):
    reg = _gates(tmp_path, forgetting(0).adapter_dir, cache, "[gates.regression]\n", reference=str(v1))["regression"]
    assert reg.verdict == "fail", reg.explanation
    assert reg.candidate < reg.baseline and reg.ci[1] < 0 and "reference" in reg.explanation
