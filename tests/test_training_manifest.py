"""`training_manifest.json` is read and written in one module; nothing a manifest holds is lost on the way."""

import json

import pytest

from harness.core.errors import HarnessError
from harness.core.training_manifest import TRAINING_MANIFEST, TrainingManifest, find_manifest, read_manifest


def test_round_trip_keeps_unknown_keys_and_old_manifests_read(tmp_path):
    d = {
        "method": "qlora",
        "base": {"chat_template_sha256": "abc"},
        "data": {"train": {"path": "t.jsonl"}},
        "config": {"max_length": 256},
        "future_key": [1, 2],
    }
    (tmp_path / TRAINING_MANIFEST).write_text(json.dumps(d))
    m = read_manifest(tmp_path)
    assert m.qlora and m.train_path == "t.jsonl" and m.max_length == 256 and m.chat_template_sha256 == "abc"
    assert m.steps is None and m.loss_log == []  # an older manifest lacks them
    m.write(tmp_path / "copy.json")
    again = json.loads((tmp_path / "copy.json").read_text())
    assert again["future_key"] == [1, 2] and {k: again[k] for k in d} == d


def test_missing_or_broken_manifests_are_clear(tmp_path):
    assert find_manifest(tmp_path) is None
    with pytest.raises(HarnessError, match="no training manifest"):
        read_manifest(tmp_path)
    (tmp_path / TRAINING_MANIFEST).write_text("{not json")
    with pytest.raises(HarnessError, match="not valid JSON"):
        read_manifest(tmp_path)
    assert TrainingManifest.from_dict({}).method is None
