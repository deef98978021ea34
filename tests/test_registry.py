"""The registry alone (no model, no gating): versions, current, resolve, rollback and the `harness registry` CLI."""

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.core import registry
from harness.core.errors import HarnessError
from harness.core.hashing import sha256_dir


def put(reg: Path, content: str, *, forced: bool = False) -> registry.Version:
    """Promote a stand-in adapter (one file of `content`) the way `harness promote` does: stage, then add."""
    reg.mkdir(parents=True, exist_ok=True)
    with registry.locked(reg):
        staged = registry.staging(reg)
        (staged / registry.MODEL).mkdir()
        (staged / registry.MODEL / "adapter_model.safetensors").write_text(content)
        record = {"form": "adapter", "sha256": sha256_dir(staged / registry.MODEL), "base": "tiny", "verdict": "pass"}
        return registry.add(reg, staged, record, forced=forced)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_versions_are_numbered_and_the_newest_is_current(tmp_path):
    reg = tmp_path / "reg"
    assert registry.versions(reg) == [] and registry.current(reg) is None
    v1 = put(reg, "one")
    v1_files = files(v1.dir)
    v2 = put(reg, "two", forced=True)
    assert [v.number for v in registry.versions(reg)] == [1, 2]
    assert registry.current(reg) == v2 and v2.dir == reg / "v2" and v2.model == reg / "v2" / "model"
    assert v2.forced and not v1.forced and v2.promoted_by and v2.promoted_at and v2.verdict == "pass"
    assert files(v1.dir) == v1_files
    assert not [p for p in reg.iterdir() if p.name.startswith(".")]  # no staging left behind
    st = json.loads((reg / "registry.json").read_text())
    assert st["current"] == 2
    assert [(e["action"], e["version"], e["from"], e.get("forced", False)) for e in st["events"]] == [
        ("promote", 1, None, False),
        ("promote", 2, 1, True),
    ]


def test_resolve_current_and_numbered_versions(tmp_path):
    reg = tmp_path / "reg"
    v1, v2 = put(reg, "one"), put(reg, "two")
    assert registry.resolve(f"registry:{reg}").number == 2
    assert registry.resolve(f"registry:{reg}@1").model == v1.model.resolve()
    assert registry.resolve(f"registry:{reg}@v2").sha256 == v2.sha256
    assert registry.resolve("registry:reg@1", base_dir=tmp_path).number == 1  # relative to the config's folder


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("registry:{tmp}/nowhere", "no registry at"),
        ("registry:{tmp}/empty", "no current version"),
        ("registry:{tmp}/reg@7", "no version 7 (versions there: v1, v2)"),
        ("registry:", "not a registry reference"),
    ],
)
def test_resolve_errors_name_the_key_and_the_fix(tmp_path, spec, message):
    put(tmp_path / "reg", "one")
    put(tmp_path / "reg", "two")
    (tmp_path / "empty").mkdir()
    spec = spec.format(tmp=tmp_path)
    with pytest.raises(HarnessError) as e:
        registry.resolve(spec, key="model.reference")
    assert message in e.value.message
    assert e.value.where == f"model.reference = {spec!r}" and e.value.fix


def test_rollback_moves_current_back_and_deletes_nothing(tmp_path, capsys):
    reg = tmp_path / "reg"
    v1, v2 = put(reg, "one"), put(reg, "two")
    before = files(reg / "v2")
    assert main(["registry", "rollback", str(reg)]) == 0
    assert "v1" in capsys.readouterr().err
    assert registry.current(reg) == v1
    assert files(reg / "v2") == before  # rolled back from, still on disk and still resolvable
    assert registry.resolve(f"registry:{reg}@2").sha256 == v2.sha256
    last = registry.state(reg)["events"][-1]
    assert (last["action"], last["version"], last["from"]) == ("rollback", 1, 2) and last["by"] and last["at"]
    # nothing before v1: exit 2, current unchanged
    assert main(["registry", "rollback", str(reg)]) == 2
    assert "no earlier version" in capsys.readouterr().err
    assert registry.current(reg) == v1


def test_rollback_skips_a_version_rolled_back_from(tmp_path):
    """v1, v2, rollback to v1, v3 promoted over v1: rolling v3 back returns to v1 (the champion before it), not
    to v2, which was already rolled back."""
    reg = tmp_path / "reg"
    v1, _ = put(reg, "one"), put(reg, "two")
    registry.rollback(reg)
    v3 = put(reg, "three")
    assert registry.current(reg) == v3
    assert registry.rollback(reg) == v1


def test_registry_list_shows_every_version_and_marks_the_current(tmp_path, capsys):
    reg = tmp_path / "reg"
    v1, v2 = put(reg, "one"), put(reg, "two", forced=True)
    registry.rollback(reg)
    assert main(["registry", "list", str(reg)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if " v1 " in line or " v2 " in line}
    assert set(rows) == {"v1", "v2"}
    assert "*" in rows["v1"] and "*" not in rows["v2"]
    assert v1.sha256[:12] in rows["v1"] and v2.sha256[:12] in rows["v2"] and "forced" in rows["v2"]


@pytest.mark.parametrize("command", ["list", "rollback"])
def test_a_missing_registry_is_bad_input_with_the_fix(tmp_path, capsys, command):
    assert main(["registry", command, str(tmp_path / "nowhere")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no registry at" in err and "harness promote --report" in err
    assert not (tmp_path / "nowhere").exists()
