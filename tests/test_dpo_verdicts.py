"""Known truth for DPO and the preference gate on the real embedded model: a short DPO stage on triage pairs (the
correct JSON answer chosen over a plausible wrong one) raises held-out preference accuracy and passes; the same
stage with chosen and rejected swapped fails; an adapter identical to the base never passes a required gain.

Measured with this recipe (8 DPO steps of 4 pairs from the base, LoRA r=16, lr 1e-3; the 160 held-out pairs of
`fine_tune/demo/preference.py`): held-out accuracy 53.8% for the base, 79.4% after DPO (CI of the change +18.1 to
+33.1 points), 25.6% after the swapped DPO (-35.0 to -21.2; 45 pairs lost, none gained)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fine_tune.demo.preference import write_preference_data
from tests.helpers import make_adapter

pytestmark = pytest.mark.slow

TRAIN = (
    'stage = "dpo"\nr = 16\nalpha = 32\nlearning_rate = 1e-3\nwarmup_steps = 2\nmax_steps = 8\nbatch_size = 4\n'
    "valid_fraction = 0\nsave_steps = 8\nlogging_steps = 2\n"
)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pairs")
    paths = write_preference_data(d)
    swapped = d / "swapped.jsonl"
    rows = [json.loads(line) for line in paths["dpo_train"].read_text().splitlines()]
    swapped.write_text(
        "".join(json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) + "\n" for r in rows)
    )
    return {**paths, "swapped": swapped}


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "harness"), *args], capture_output=True, text=True)


def _train_and_gate(tmp_path: Path, cache: Path, train: Path, min_gain: float, candidate: str | None = None) -> dict:
    cfg = tmp_path / "release.toml"
    gated_model = candidate or str(tmp_path / "run" / "dpo" / "adapter")  # by default what `harness train` writes
    cfg.write_text(
        f'[model]\nbase = "smollm2-135m-instruct"\ncandidate = "{gated_model}"\n\n'
        f'[run]\ncache_dir = "{cache}"\n\n[fine_tune]\ntrain = "{train}"\n{TRAIN}\n'
        f'[gates.preference]\ndata = "{train.parent / "preference_eval.jsonl"}"\nmin_gain = {min_gain}\n'
    )
    if candidate is None:
        trained = _harness("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
        assert trained.returncode == 0, trained.stderr[-2000:]
    gated = _harness("gate", "--config", str(cfg), "--out", str(tmp_path / "report"))
    assert gated.returncode in (0, 1), gated.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (result,) = report["gates"]
    assert (gated.returncode == 0) == (result["verdict"] == "pass")  # the exit code blocks what the gate blocks
    return result


def test_dpo_on_triage_pairs_raises_held_out_preference_accuracy(tmp_path, real_cache, pairs):
    g = _train_and_gate(tmp_path, real_cache, pairs["dpo_train"], 0.0)
    assert g["verdict"] == "pass", g["explanation"]
    assert g["candidate"] - g["baseline"] >= 0.1 and g["ci"][0] > 0


def test_dpo_with_chosen_and_rejected_swapped_fails(tmp_path, real_cache, pairs):
    g = _train_and_gate(tmp_path, real_cache, pairs["swapped"], 0.0)
    assert g["verdict"] == "fail", g["explanation"]
    assert g["ci"][1] < 0  # it learned the opposite: fewer held-out pairs right than the base
    assert g["evidence"], "the pairs the candidate lost are shown"


def test_an_identical_adapter_does_not_pass_a_required_gain(tmp_path, real_cache, embedded_base, pairs):
    zero = make_adapter(embedded_base, tmp_path / "zero", "zero")
    g = _train_and_gate(tmp_path, real_cache, pairs["dpo_train"], 0.02, candidate=str(zero))
    assert g["verdict"] == "fail" and g["delta"] == 0, g["explanation"]
