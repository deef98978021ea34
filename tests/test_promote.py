import json
import shutil

import pytest

from harness.cli import main
from harness.pipeline import run
from tests.helpers import write_config


@pytest.fixture()
def gated(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    """Gate a private copy of the adapter; `margin` picks pass (-0.5) or fail (0.0)."""

    def _gate(margin: float):
        adapter = tmp_path / f"adapter-{margin}"
        shutil.copytree(tiny_zero_adapter, adapter)
        cfg = write_config(
            tmp_path / f"r{margin}.toml",
            base=str(tiny_base.dir),
            adapter=adapter,
            data=text_data,
            cache_dir=tmp_path / "cache",
            min_relative_improvement=margin,
        )
        result = run(cfg, tmp_path / f"out{margin}")
        return result.files["json"], adapter

    return _gate


def test_passing_report_promotes_a_copy(tmp_path, gated):
    report, adapter = gated(-0.5)
    registry = tmp_path / "registry"
    assert main(["promote", "--report", str(report), "--to", str(registry)]) == 0
    (entry,) = list(registry.iterdir())
    assert (entry / "adapter" / "adapter_model.safetensors").read_bytes() == (
        adapter / "adapter_model.safetensors"
    ).read_bytes()
    assert (
        json.loads((entry / "PROMOTED.json").read_text())["adapter_sha256"]
        == json.loads(report.read_text())["candidate"]["adapter_sha256"]
    )
    assert (entry / "report.md").is_file()
    # promoting the same thing again is a no-op, not an overwrite
    assert main(["promote", "--report", str(report), "--to", str(registry)]) == 0
    assert len(list(registry.iterdir())) == 1


def test_failed_report_is_refused_and_registry_untouched(tmp_path, gated, capsys):
    report, _ = gated(0.0)
    registry = tmp_path / "registry"
    assert main(["promote", "--report", str(report), "--to", str(registry)]) == 1
    assert not registry.exists()
    assert "did not pass" in " ".join(capsys.readouterr().err.split())


def test_adapter_changed_after_gating_is_refused(tmp_path, gated, capsys):
    report, adapter = gated(-0.5)
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the weights
    weights.write_bytes(bytes(data))
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "keep.txt").write_text("mine")
    assert main(["promote", "--report", str(report), "--to", str(registry)]) == 1
    assert sorted(p.name for p in registry.iterdir()) == ["keep.txt"]
    assert "changed after gating" in " ".join(capsys.readouterr().err.split())


def test_not_a_report_is_bad_input(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text("{}")
    assert main(["promote", "--report", str(bad), "--to", str(tmp_path / "reg")]) == 2
    assert main(["promote", "--report", str(tmp_path / "missing.json"), "--to", str(tmp_path / "reg")]) == 2
