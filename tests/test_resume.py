"""`harness train --resume` after the process is really killed mid-run (SIGKILL, no mocking)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from fine_tune import write_demo_data


def _harness(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "harness"), *args]


def test_resume_after_kill_continues_from_the_checkpoint_with_the_same_result(tmp_path, tiny_base):
    data = write_demo_data(tmp_path / "data", policy=False, n_train=40, n_valid=8, n_eval=8)
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\n\n[fine_tune]\ntrain = "{data["train"]}"\n'
        "max_steps = 24\nbatch_size = 4\nlogging_steps = 1\neval_steps = 6\nsave_steps = 4\nr = 4\nalpha = 8\n"
        "learning_rate = 1e-3\nwarmup_steps = 2\n"
    )
    env = {**os.environ, "HARNESS_QUIET": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _harness("train", "--config", str(cfg), "--out", str(killed)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = killed / "sft" / "checkpoints" / "checkpoint-8" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ckpt.exists():
        pytest.fail("the training run ended before its checkpoint at step 8 could be observed")
    assert not (killed / "sft" / "adapter").exists()

    # without --resume the half-finished directory is refused, never overwritten
    refused = subprocess.run(
        _harness("train", "--config", str(cfg), "--out", str(killed)), env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = subprocess.run(
        _harness("train", "--config", str(cfg), "--out", str(killed), "--resume"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    m = json.loads((killed / "sft" / "training_manifest.json").read_text())
    assert m["resumed_from_step"] >= 8 and m["steps"] == 24
    steps = [r["step"] for r in m["loss_log"] if r["train_loss"] is not None]
    assert steps == list(range(1, 25))  # every step logged once: the run continued, it did not restart

    straight = tmp_path / "straight"
    done = subprocess.run(
        _harness("train", "--config", str(cfg), "--out", str(straight)), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    a = load_file(killed / "sft" / "adapter" / "adapter_model.safetensors")
    b = load_file(straight / "sft" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:  # same data order and RNG state after the resume: the same adapter
        assert (a[k] - b[k]).abs().max().item() < 1e-4, k
