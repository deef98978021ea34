"""Broken release configs and output paths: exit 2 naming the file, line or key with the fix, before any model
loads, and nothing of the user's written, echoed or left behind."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.pipeline import Measurer
from tests.helpers import write_config

JUDGE = '\n[gates.judge]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "j"\n'
KEY = "sk-proj-Xq7fLm2ZpR9vT4wK8bN3cD6hJ"  # looks like an OpenAI key; never printed back


@pytest.fixture()
def config(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    return write_config(tmp_path / "release.toml", base=str(tiny_base.dir), adapter=tiny_zero_adapter, data=text_data)


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("command", ["gate", "plan"])
def test_a_config_that_is_not_utf8_names_the_line_and_column(config, tmp_path, capsys, command):
    text = config.read_text().replace("[model]\n", "[model]\n# caf\u00e9 incidents\n", 1)
    config.write_bytes(text.encode("latin-1"))
    out = tmp_path / "out"
    args = ["--out", str(out)] if command == "gate" else []
    assert main([command, "--config", str(config), *args]) == 2
    err = _err(capsys)
    assert f"{config}:2" in err and "not UTF-8" in err and "byte 0xe9 at line 2, column 6" in err
    assert "save the file as UTF-8" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["gate", "plan"])
def test_a_byte_order_mark_is_named(config, tmp_path, capsys, command):
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    args = ["--out", str(tmp_path / "out")] if command == "gate" else []
    assert main([command, "--config", str(config), *args]) == 2
    err = _err(capsys)
    assert f"{config}:1" in err and "byte-order mark (BOM" in err and "save it without the BOM" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("section", ["model", "gates.judge"])
def test_an_api_key_in_place_of_its_variable_name_is_refused_and_never_echoed(config, tmp_path, capsys, section):
    text = config.read_text()
    if section == "model":
        text = text.replace(
            "[model]\n",
            '[model]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nserved_base = "b"\n'
            f'served_candidate = "c"\napi_key_env = "{KEY}"\n',
            1,
        )
    else:
        text += JUDGE + f'api_key_env = "{KEY}"\n'
    config.write_text(text)
    assert main(["gate", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert KEY not in captured.err and KEY not in captured.out and KEY[:12] not in captured.err
    err = " ".join(captured.err.split())
    assert f"[{section}] api_key_env" in err and "NAME of an environment variable" in err and "revoke it" in err
    assert not (tmp_path / "out").exists()


def test_an_api_key_variable_name_is_accepted(config):
    from harness.config import load_config

    config.write_text(config.read_text() + JUDGE + 'api_key_env = "JUDGE_KEY"\n')
    assert load_config(config).gate("judge").params.api_key_env == "JUDGE_KEY"


def test_out_under_a_file_is_refused_before_anything_runs(config, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    assert main(["gate", "--config", str(config), "--out", str(blocker / "out")]) == 2
    err = _err(capsys)
    assert f"--out {blocker / 'out'}" in err and "is a file" in err and "fix:" in err
    assert blocker.read_text() == "mine"


def test_out_on_a_read_only_file_system_is_refused_up_front(config, capsys):
    assert main(["gate", "--config", str(config), "--out", "/proc/harness-out/run"]) == 2
    err = _err(capsys)
    assert "--out /proc/harness-out/run" in err and "cannot be written" in err and "fix:" in err


def _interrupted(self, *a, **kw):
    raise KeyboardInterrupt


def test_a_run_stopped_before_its_report_removes_the_out_dir_it_made(config, tmp_path, monkeypatch):
    monkeypatch.setattr(Measurer, "measure", _interrupted)  # Ctrl-C while measuring
    out = tmp_path / "new" / "nested" / "out"
    assert main(["gate", "--config", str(config), "--out", str(out)]) == 130
    assert not (tmp_path / "new").exists()  # every folder it made is gone again


def test_a_run_stopped_before_its_report_leaves_a_folder_the_user_made(config, tmp_path, monkeypatch):
    monkeypatch.setattr(Measurer, "measure", _interrupted)
    out = tmp_path / "mine"
    out.mkdir()
    assert main(["gate", "--config", str(config), "--out", str(out / "run")]) == 130
    assert out.is_dir() and not any(out.iterdir())
    assert main(["gate", "--config", str(config), "--out", str(out)]) == 130
    assert out.is_dir()  # the user's own (empty) --out folder stays
