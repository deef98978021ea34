"""Licence audit: rows (or their folder's dataset card) carry a licence; the audit tallies them and flags rows
with none; a licence the config refuses stops `harness data audit` (exit 1), `harness train` and `harness gate`
(before any model loads), naming the row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fine_tune.licenses import tally
from harness.core.data import load_dataset
from harness.core.errors import HarnessError
from tests.helpers import write_jsonl

REPO = Path(__file__).resolve().parent.parent


def _rows(n: int = 4, **override: str) -> list[dict]:
    rows = [
        {"id": f"r{i}", "prompt": f"q{i}", "completion": f"a{i}", "license": "MIT", "source": "ours"} for i in range(n)
    ]
    for i, lic in override.items():
        rows[int(i[1:])]["license"] = lic
    return rows


def test_tally_counts_licences_flags_rows_without_one_and_reads_the_dataset_card(tmp_path):
    rows = _rows(4)
    del rows[2]["license"]
    t = tally(load_dataset(str(write_jsonl(tmp_path / "a" / "train.jsonl", rows))))
    assert t.licenses == {"MIT": 3, "(none)": 1} and t.unlicensed == ["r2"] and t.sources == {"ours": 4}
    (tmp_path / "a" / "README.md").write_text("---\nlicense: cc-by-4.0\npretty_name: x\n---\n# card\n")
    t = tally(load_dataset(str(tmp_path / "a" / "train.jsonl")))
    assert t.card == "cc-by-4.0" and t.licenses == {"MIT": 3, "cc-by-4.0": 1} and not t.unlicensed
    t = tally(load_dataset(str(tmp_path / "a" / "train.jsonl")), allowed=["mit"])
    assert t.refused_rows == 1 and t.refused[0]["id"] == "r2" and t.refused[0]["why"] == "not in allowed_licenses"


def test_data_audit_refuses_a_disallowed_licence_naming_the_row(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", _rows(5, r3="CC-BY-NC-4.0"))
    cfg = tmp_path / "release.toml"
    cfg.write_text('[data]\ndisallowed_licenses = ["cc-by-nc-4.0"]\n')
    run = subprocess.run(
        [sys.executable, "-m", "harness.cli", "data", "audit", str(data), "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    assert "r3 (line 4: CC-BY-NC-4.0, disallowed)" in run.stderr
    assert "| licences (rows) | MIT 4, CC-BY-NC-4.0 1; **1 refused** |" in run.stdout
    ok = subprocess.run(
        [sys.executable, "-m", "harness.cli", "data", "audit", str(data)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert ok.returncode == 0 and "MIT 4, CC-BY-NC-4.0 1" in ok.stdout


def test_train_and_gate_refuse_training_data_under_a_disallowed_licence_before_any_model_loads(tmp_path):
    from fine_tune.runner import train_from_config
    from harness.config import load_config
    from harness.pipeline import run

    write_jsonl(tmp_path / "train.jsonl", _rows(4, r1="proprietary"))
    write_jsonl(tmp_path / "eval.jsonl", [{"id": "e", "text": "held out"}])
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        '[model]\nbase = "no-such-model-is-loaded"\nadapter = "adapter"\n\n[data]\nallowed_licenses = ["MIT"]\n\n'
        '[fine_tune]\ntrain = "train.jsonl"\n\n[gates.perplexity]\ndata = "eval.jsonl"\n\n[gates.regression]\n'
    )
    with pytest.raises(HarnessError) as e:
        train_from_config(load_config(cfg, purpose="train"), tmp_path / "out")
    assert "r1 (line 2: proprietary, not in allowed_licenses)" in str(e.value) and "train.jsonl:2" in str(e.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(HarnessError) as e:
        run(cfg, tmp_path / "report")
    assert "r1 (line 2: proprietary" in str(e.value)
    from harness.sweep import sweep

    with pytest.raises(HarnessError) as e:
        sweep(load_config(cfg, purpose="train"), [4, 8], tmp_path / "sweep")
    assert "r1 (line 2: proprietary" in str(e.value) and not (tmp_path / "sweep").exists()


def test_config_refuses_a_licence_both_allowed_and_disallowed(tmp_path):
    from harness.config import load_config
    from harness.core.errors import ConfigError

    cfg = tmp_path / "r.toml"
    cfg.write_text('[data]\nallowed_licenses = ["MIT"]\ndisallowed_licenses = ["mit"]\n')
    with pytest.raises(ConfigError) as e:
        load_config(cfg, purpose="data")
    assert "[data] disallowed_licenses (line 3)" in str(e.value)
