"""Experiment tracking, offline: TRL logs training to TensorBoard (`[fine_tune] report_to`), and `harness gate
--log-to tensorboard` adds the release verdict and every gate's metric to that same run, read back here with
TensorBoard's own event reader."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from fine_tune import write_demo_data
from harness.cli import main
from tests.helpers import TEXT_ROWS, tensorboard_scalars, write_config, write_jsonl

FAST = dict(max_steps=4, batch_size=4, logging_steps=1, eval_steps=2, save_steps=2, warmup_steps=0, r=4, alpha=8)


def _train(tmp_path: Path, base, report_to: str) -> Path:
    data = write_demo_data(tmp_path / "demo", policy=False, n_train=16, n_valid=4, n_eval=4)
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'[model]\nbase = "{base.dir}"\n\n[fine_tune]\ntrain = "{data["train"]}"\nreport_to = "{report_to}"\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in FAST.items())
    )
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "train")]) == 0
    return tmp_path / "train" / "sft"


def test_gate_metrics_land_in_the_training_runs_tensorboard(tmp_path, tiny_base, capsys):
    stage = _train(tmp_path, tiny_base, "tensorboard")
    manifest = json.loads((stage / "adapter" / "training_manifest.json").read_text())
    logdir = stage / "tensorboard"
    assert manifest["tracking"] == {"report_to": "tensorboard", "logging_dir": str(logdir.resolve())}
    training = tensorboard_scalars(logdir)
    assert [s for s, _ in training["train/loss"]] == [1, 2, 3, 4]  # TRL's own logging, kept after training
    assert [s for s, _ in training["eval/valid_loss"]] == [0, 2, 4]

    data = write_jsonl(tmp_path / "text.jsonl", TEXT_ROWS)
    cfg = write_config(
        tmp_path / "release.toml",
        base=str(tiny_base.dir),
        adapter=stage / "adapter",
        data=data,
        cache_dir=tmp_path / "cache",
        min_relative_improvement=0.5,  # a 4-step adapter cannot: the release is blocked
    )
    code = main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out"), "--log-to", "tensorboard"])
    assert code == 1
    assert "the adapter's training run, step 4" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (gate,) = report["gates"]
    logged = tensorboard_scalars(logdir)  # the same directory: training and release side by side
    assert logged["release/passed"] == [(4, 0.0)]  # at the training's last step
    assert logged["gates/perplexity/passed"] == [(4, 0.0)]
    for key in ("baseline", "candidate", "delta", "threshold"):
        assert logged[f"gates/perplexity/{key}"] == [(4, pytest.approx(gate[key], rel=1e-6))]
    assert logged["gates/perplexity/ci_low"] == [(4, pytest.approx(gate["ci"][0], rel=1e-6))]
    assert logged["train/loss"] == training["train/loss"]  # nothing of the training run rewritten
    assert not (tmp_path / "out" / "tensorboard").exists()
    # the training's directory gone (the adapter moved on): a new run beside the report, nothing recreated there
    shutil.rmtree(logdir)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out2"), "--log-to", "tensorboard"]) == 1
    assert (
        tensorboard_scalars(tmp_path / "out2" / "tensorboard")["release/passed"] == [(4, 0.0)] and not logdir.exists()
    )


def test_adapter_without_a_tracked_run_logs_to_a_new_run_in_out(tmp_path, tiny_base, tiny_zero_adapter):
    data = write_jsonl(tmp_path / "text.jsonl", TEXT_ROWS)
    cfg = write_config(
        tmp_path / "release.toml",
        base=str(tiny_base.dir),
        adapter=tiny_zero_adapter,
        data=data,
        cache_dir=tmp_path / "cache",
        min_relative_improvement=0.0,
    )
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out"), "--log-to", "tensorboard"]) == 1
    logged = tensorboard_scalars(tmp_path / "out" / "tensorboard")
    assert logged["release/passed"] == [(0, 0.0)]
    assert logged["gates/perplexity/delta"] == [(0, 0.0)]  # the zero adapter changes nothing


def test_unknown_report_to_is_a_config_error_naming_the_key(tmp_path, tiny_base, capsys):
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'[model]\nbase = "{tiny_base.dir}"\n\n[fine_tune]\ntrain = "x.jsonl"\nreport_to = "mlflow"\n')
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "report_to" in err and "tensorboard" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_log_to_wandb_without_wandb_exits_2_before_measuring(tmp_path, tiny_base, tiny_zero_adapter, capsys):
    cfg = write_config(
        tmp_path / "release.toml",
        base=str(tiny_base.dir),
        adapter=tiny_zero_adapter,
        data=write_jsonl(tmp_path / "text.jsonl", TEXT_ROWS),
        cache_dir=tmp_path / "cache",
    )
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out"), "--log-to", "wandb"]) == 2
    assert "pip install 'wandb'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # nothing measured
