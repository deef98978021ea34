import json
import logging

import pytest

from harness.core.errors import HarnessError
from harness.core.models import check_adapter, fingerprint, load_tokenizer, resolve_base
from tests.helpers import build_tiny_llama, make_adapter


def test_embedded_alias_resolves_to_cached_safetensors(embedded_base):
    assert embedded_base.source == "alias"
    assert (embedded_base.dir / "model.safetensors").is_file()
    assert embedded_base.gguf_sha256 and len(embedded_base.gguf_sha256) == 64
    again = resolve_base("smollm2-135m-instruct")
    assert again.dir == embedded_base.dir  # converted once, reused


def test_fingerprint_tracks_adapter_and_template(tiny_base, tiny_zero_adapter, tiny_damage_adapter):
    zero = check_adapter(tiny_zero_adapter, tiny_base)
    damage = check_adapter(tiny_damage_adapter, tiny_base)
    base_fp = fingerprint(tiny_base)
    assert base_fp.chat_template_sha256 is not None
    keys = {base_fp.key, fingerprint(tiny_base, zero).key, fingerprint(tiny_base, damage).key}
    assert len(keys) == 3


def test_adapter_for_another_base_is_refused(tmp_path, tiny_base, embedded_base):
    other = build_tiny_llama(tmp_path / "wide", embedded_base.dir, hidden=96)
    adapter = make_adapter(other, tmp_path / "wide-adapter")
    with pytest.raises(HarnessError) as e:
        check_adapter(adapter, tiny_base)
    msg = str(e.value)
    assert "does not fit the base model" in msg and "q_proj" in msg and "fix:" in msg


def test_adapter_with_unknown_target_modules_is_refused(tmp_path, tiny_base, tiny_zero_adapter):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_zero_adapter, bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["target_modules"] = ["query_key_value", "q_proj"]
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(HarnessError, match="targets modules the base does not have: query_key_value"):
        check_adapter(bad, tiny_base)


def test_missing_or_non_adapter_dirs(tmp_path, tiny_base):
    with pytest.raises(HarnessError, match="adapter directory not found"):
        check_adapter(tmp_path / "nope", tiny_base)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no adapter_config.json"):
        check_adapter(tmp_path / "empty", tiny_base)


def test_recorded_base_mismatch_warns_but_does_not_refuse(tmp_path, tiny_base, tiny_zero_adapter, caplog):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tiny_zero_adapter, moved)
    cfg = json.loads((moved / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/data/checkpoints/my-local-copy"
    (moved / "adapter_config.json").write_text(json.dumps(cfg))
    with caplog.at_level(logging.WARNING):
        info = check_adapter(moved, tiny_base)
    assert info.recorded_base == "/data/checkpoints/my-local-copy"
    assert info.warnings and "my-local-copy" in caplog.text


def test_base_resolution_errors(tmp_path):
    with pytest.raises(HarnessError, match="GGUF file not found"):
        resolve_base(str(tmp_path / "model.gguf"))
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(HarnessError, match="no config.json"):
        resolve_base(str(tmp_path / "notamodel"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(HarnessError, match="only pickle"):
        resolve_base(str(tmp_path / "pickled"))
    with pytest.raises(HarnessError, match="base model not found"):
        resolve_base("not-a-path-or-alias")


def test_tokenizer_without_chat_template_is_refused_for_chat(tmp_path, tiny_base):
    import shutil

    d = tmp_path / "tok"
    shutil.copytree(tiny_base.dir, d)
    (d / "chat_template.jinja").unlink()
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert load_tokenizer(d).chat_template is None
    with pytest.raises(HarnessError, match="no chat template"):
        load_tokenizer(d, need_chat_template=True)
