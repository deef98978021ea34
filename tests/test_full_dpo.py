"""The runner's other kinds on a tiny model: a full fine-tune (every weight; killed, resumed, gated as a candidate) and
a DPO stage after SFT on TRL's DPOTrainer; the DPO data's row checks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from fine_tune import FineTuneSpec, write_demo_data
from fine_tune.demo.preference import write_preference_data
from fine_tune.runner import train
from harness.config import load_config
from harness.core.errors import HarnessError

FAST = "batch_size = 4\nlogging_steps = 1\nwarmup_steps = 0\nlearning_rate = 1e-4\n"


def _harness(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "harness"), *args]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return {**write_demo_data(d, policy=False, n_train=24, n_valid=8, n_eval=8), **write_preference_data(d, n_train=24)}


def test_full_finetune_resumes_after_kill_and_is_gated_as_a_candidate(tmp_path, tiny_base, data):
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\ncandidate = "run/sft/model"\n\n[run]\ncache_dir = "{tmp_path / "c"}"\n\n'
        f'[fine_tune]\ntrain = "{data["train"]}"\nmethod = "full"\nr = 4\nmax_steps = 12\neval_steps = 6\n'
        f"save_steps = 4\n{FAST}\n"
        f'[gates.perplexity]\ndata = "{data["eval"]}"\nmin_relative_improvement = 0.0\n\n[gates.overfit]\n'
    )
    env = {**os.environ, "HARNESS_QUIET": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _harness("train", "--config", str(cfg), "--out", str(run)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = run / "sft" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.monotonic() + 180
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ckpt.exists():
        pytest.fail("the full fine-tune ended before its checkpoint at step 4 could be observed")
    assert not (run / "sft" / "model").exists()

    resumed = subprocess.run(
        _harness("train", "--config", str(cfg), "--out", str(run), "--resume"), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert 'r: LoRA keys, ignored by method = "full"' in " ".join(resumed.stderr.split())
    model = run / "sft" / "model"
    m = json.loads((model / "training_manifest.json").read_text())
    assert m["method"] == "full" and m["steps"] == 12 and m["resumed_from_step"] >= 4
    assert [r["step"] for r in m["loss_log"] if r["train_loss"] is not None] == list(range(1, 13))
    assert m["optimizer"] == "adamw_torch" and m["activation_checkpointing"] is True and m["peak_memory_mb"] > 0
    assert m["trainable_params"] == sum(v.numel() for v in load_file(model / "model.safetensors").values())
    assert (model / "chat_template.jinja").is_file() or "chat_template" in (model / "tokenizer_config.json").read_text()

    gated = subprocess.run(
        _harness("gate", "--config", str(cfg), "--out", str(tmp_path / "report")),
        env=env,
        capture_output=True,
        text=True,
    )
    assert gated.returncode in (0, 1), gated.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    verdicts = {g["name"]: g["verdict"] for g in report["gates"]}
    assert set(verdicts) == {"perplexity", "overfit"} and "error" not in verdicts.values(), verdicts
    # fitting the triage answers with every weight: held-out perplexity comes down
    assert verdicts["perplexity"] == "pass"


def test_dpo_after_sft_continues_the_sft_adapter_and_logs_trl_metrics(tmp_path, tiny_base, data):
    spec = FineTuneSpec(
        train=str(data["train"]),
        dpo_data=str(data["dpo_train"]),
        stage="sft+dpo",
        max_steps=4,
        batch_size=4,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        warmup_steps=0,
        r=4,
        alpha=8,
        learning_rate=1e-3,
    )
    outcome = train(spec, tiny_base, tmp_path / "out")
    sft, dpo = outcome.stages
    assert (sft.stage, dpo.stage) == ("sft", "dpo")
    m = json.loads(dpo.manifest_path.read_text())
    assert m["init_adapter"] == str(sft.adapter_dir) and m["dpo"] == {"beta": 0.1, "loss_type": "sigmoid"}
    last = [r for r in m["loss_log"] if r["train_loss"] is not None][-1]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(last)
    assert any(r.get("eval_rewards/accuracies") is not None for r in m["loss_log"])
    weights = load_file(dpo.adapter_dir / "adapter_model.safetensors")
    assert not any(".ref." in k for k in weights) and not (dpo.adapter_dir / "ref").exists()  # TRL's frozen copy
    before = load_file(sft.adapter_dir / "adapter_model.safetensors")
    assert weights.keys() == before.keys()
    assert any((weights[k] - before[k]).abs().max().item() > 0 for k in weights)  # DPO moved the SFT adapter
    assert dpo.loss_curve.is_file() and dpo.steps == 4


def _bad_pairs(path: Path) -> Path:
    rows = [
        {"prompt": "Triage: the DB is down.", "chosen": '{"severity": "critical"}', "rejected": "It is bad."},
        {"prompt": "Triage: a slow page.", "chosen": '{"severity": "low"}', "rejected": "Slow."},
        {"prompt": "Triage: disk full.", "chosen": '{"severity": "high"}', "rejected": '{"severity": "high"}'},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_bad_dpo_file_exits_2_naming_its_line(tmp_path, tiny_base):
    bad = _bad_pairs(tmp_path / "pairs.jsonl")
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\n\n[fine_tune]\ntrain = "{bad}"\nstage = "dpo"\nmax_steps = 2\n{FAST}'
    )
    out = subprocess.run(
        _harness("train", "--config", str(cfg), "--out", str(tmp_path / "o")), capture_output=True, text=True
    )
    assert out.returncode == 2
    assert f"{bad}:3" in " ".join(out.stderr.split()), out.stderr


def test_a_prompt_longer_than_max_length_is_named(tmp_path, tiny_base):
    long = tmp_path / "long.jsonl"
    rows = [{"prompt": "word " * (8 if i != 1 else 400), "chosen": "yes", "rejected": "no"} for i in range(4)]
    long.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = FineTuneSpec(train=str(long), stage="dpo", max_steps=1, max_length=64)
    with pytest.raises(HarnessError, match=r"long\.jsonl:2"):
        train(spec, tiny_base, tmp_path / "o")


def test_dpo_after_sft_needs_its_own_data(tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text('[model]\nbase = "x"\n\n[fine_tune]\ntrain = "t.jsonl"\nstage = "sft+dpo"\n')
    with pytest.raises(HarnessError, match="dpo_data"):
        load_config(cfg, purpose="train")
