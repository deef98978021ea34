"""The minimal LoRA SFT path on a tiny model: an adapter with its training manifest."""

import json

import pytest

from fine_tune import LoraSFTConfig, chat_rows, train_lora_sft, write_demo_data
from harness.data import load_dataset
from harness.errors import HarnessError
from harness.models import check_adapter, fingerprint


def test_sft_writes_adapter_and_manifest(tmp_path, tiny_base):
    paths = write_demo_data(tmp_path / "data", n_train=16, n_valid=4, n_eval=4)
    train, valid = load_dataset(paths["train"]), load_dataset(paths["valid"])
    cfg = LoraSFTConfig(r=4, alpha=8, max_steps=3, batch_size=4, max_length=256, logging_steps=1, warmup_steps=0)
    result = train_lora_sft(tiny_base, train, tmp_path / "adapter", cfg, valid=valid)
    assert result.steps == 3
    info = check_adapter(result.adapter_dir, tiny_base)  # it fits the base it was trained on
    assert sorted(info.target_modules) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert not (result.adapter_dir / "training_args.bin").exists()  # no pickle shipped
    m = json.loads(result.manifest_path.read_text())
    assert m["base"]["weights_sha256"] == fingerprint(tiny_base).weights_sha256
    assert m["data"]["train"]["sha256"] == train.sha256 and m["data"]["train"]["records"] == 16
    assert m["seed"] == 0 and m["config"]["r"] == 4
    assert m["tokens_per_s"] > 0 and m["valid_loss"] > 0 and len(m["loss_log"]) == 3
    with pytest.raises(HarnessError, match="an adapter already exists"):
        train_lora_sft(tiny_base, train, tmp_path / "adapter", cfg)


def test_rows_without_an_answer_are_refused(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "raw text is not a chat pair"}\n')
    with pytest.raises(HarnessError, match="t.jsonl:1: SFT rows need a prompt and an assistant answer"):
        chat_rows(load_dataset(p))
