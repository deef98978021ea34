import json
import shutil
from pathlib import Path

import pytest

from harness import registry
from harness.cli import main
from harness.hashing import sha256_dir
from harness.pipeline import run
from tests.helpers import TEXT_ROWS, write_config, write_jsonl


@pytest.fixture(scope="module")
def gated_once(tmp_path_factory, tiny_base, tiny_zero_adapter):
    """Gate a private copy of the adapter once for the module; `margin` picks pass (-0.5) or fail (0.0)."""
    root = tmp_path_factory.mktemp("gated")
    data = write_jsonl(root / "data" / "eval.jsonl", TEXT_ROWS)
    out = {}
    for verdict, margin in (("pass", -0.5), ("fail", 0.0)):
        adapter = root / f"adapter-{verdict}"
        shutil.copytree(tiny_zero_adapter, adapter)
        cfg = write_config(
            root / f"r-{verdict}.toml",
            base=str(tiny_base.dir),
            adapter=adapter,
            data=data,
            cache_dir=root / "cache",
            min_relative_improvement=margin,
        )
        out[verdict] = run(cfg, root / f"out-{verdict}").files["json"]
    return out


def release(
    gated_once, tmp_path: Path, name: str, *, full_from: Path | None = None, reference: dict | None = None
) -> tuple[Path, Path]:
    """A passing report of its own about a private candidate `name` (distinct content: a NOTE file): the gated
    adapter, or with `full_from` a copy of that full model directory; its `reference` replaced when given.
    Returns (report.json, candidate directory)."""
    src = json.loads(gated_once["pass"].read_text())
    cand = tmp_path / name
    if full_from is not None:
        shutil.copytree(full_from, cand)
    else:
        shutil.copytree(src["candidate"]["path"], cand)
    (cand / "NOTE.txt").write_text(name)
    sha = sha256_dir(cand, fresh=True)
    if full_from is not None:
        src["candidate"] = {"form": "full", "path": str(cand), "sha256": sha, "base": None, "describe": f"full {cand}"}
    else:
        src["candidate"].update(path=str(cand), sha256=sha, adapter=str(cand), adapter_sha256=sha)
    if reference is not None:
        src["reference"] = reference
    out = tmp_path / f"{name}-report"
    out.mkdir()
    (out / "report.json").write_text(json.dumps(src))
    shutil.copy2(gated_once["pass"].parent / "report.md", out / "report.md")
    return out / "report.json", cand


def gated_against(v: registry.Version) -> dict:
    """The `reference` a report gated with reference = "registry:DIR" records."""
    return {
        "form": v.form,
        "path": str(v.model),
        "sha256": v.sha256,
        "base": v.base,
        "describe": f"registry {v.registry} v{v.number}, {v.form} {v.model} (sha256 {v.sha256[:12]})",
        "registry": {"dir": str(v.registry), "version": v.number},
    }


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def promote_cli(report: Path, reg: Path, *extra: str) -> int:
    return main(["promote", "--report", str(report), "--to", str(reg), *extra])


def test_passing_report_promotes_v1_and_again_is_a_no_op(tmp_path, gated_once, capsys):
    report = gated_once["pass"]
    gated = json.loads(report.read_text())
    reg = tmp_path / "registry"
    assert promote_cli(report, reg) == 0
    v1 = reg / "v1"
    adapter = Path(gated["candidate"]["path"])
    assert snapshot(v1 / "model") == snapshot(adapter)
    promoted = json.loads((v1 / "PROMOTED.json").read_text())
    assert promoted["version"] == 1 and promoted["form"] == "adapter" and promoted["verdict"] == "pass"
    assert promoted["sha256"] == gated["candidate"]["sha256"] and promoted["forced"] is False
    assert promoted["reference"] == gated["reference"] and promoted["report"] == str(report.resolve())
    assert promoted["promoted_by"] and promoted["promoted_at"]
    assert (v1 / "report.md").is_file() and (v1 / "report.json").read_bytes() == report.read_bytes()
    assert (v1 / "config.toml").read_bytes() == Path(gated["manifest"]["config_path"]).read_bytes()
    state = json.loads((reg / "registry.json").read_text())
    assert state["current"] == 1
    assert [(e["action"], e["version"], e["from"]) for e in state["events"]] == [("promote", 1, None)]
    capsys.readouterr()
    # the same candidate again: a no-op that says so, not an overwrite and not a v2
    before = snapshot(reg)
    assert promote_cli(report, reg) == 0
    assert "already promoted" in capsys.readouterr().err
    assert snapshot(reg) == before


def test_two_adapters_make_two_versions_and_v1_stays_byte_for_byte(tmp_path, gated_once, capsys):
    reg = tmp_path / "registry"
    r1, _ = release(gated_once, tmp_path, "one")
    assert promote_cli(r1, reg) == 0
    v1 = registry.current(reg)
    before = snapshot(v1.dir)
    r2, a2 = release(gated_once, tmp_path, "two", reference=gated_against(v1))
    assert promote_cli(r2, reg) == 0
    assert snapshot(v1.dir) == before
    assert [v.number for v in registry.versions(reg)] == [1, 2]
    v2 = registry.current(reg)
    assert v2.number == 2 and v2.sha256 == sha256_dir(a2) and v2.reference["registry"]["version"] == 1
    assert not v2.forced
    capsys.readouterr()
    assert main(["registry", "list", str(reg)]) == 0
    table = capsys.readouterr().out
    assert "v1" in table and "v2" in table and v1.sha256[:12] in table and v2.sha256[:12] in table
    (current_row,) = [line for line in table.splitlines() if "*" in line]
    assert "v2" in current_row


def test_a_release_gated_against_the_registry_promotes_without_force(tmp_path, tiny_base, gated_once):
    """The real flow: v1 promoted, the next candidate gated with reference = "registry:DIR", then promoted."""
    reg = tmp_path / "registry"
    assert promote_cli(gated_once["pass"], reg) == 0
    adapter = tmp_path / "next"
    shutil.copytree(json.loads(gated_once["pass"].read_text())["candidate"]["path"], adapter)
    (adapter / "NOTE.txt").write_text("next")
    cfg = write_config(
        tmp_path / "next.toml",
        base=str(tiny_base.dir),
        adapter=adapter,
        data=write_jsonl(tmp_path / "eval.jsonl", TEXT_ROWS),
        cache_dir=tmp_path / "cache",
        min_relative_improvement=-0.5,
    )
    cfg.write_text(cfg.read_text().replace("[model]\n", f'[model]\nreference = "registry:{reg}"\n', 1))
    result = run(cfg, tmp_path / "out")
    assert result.passed
    assert promote_cli(result.files["json"], reg) == 0
    assert registry.current(reg).number == 2 and not registry.current(reg).forced


def test_champion_moved_since_gating_needs_force(tmp_path, gated_once, capsys):
    reg = tmp_path / "registry"
    r1, _ = release(gated_once, tmp_path, "one")
    r2, _ = release(gated_once, tmp_path, "two")  # gated against the base, like r1: v1 is not its reference
    assert promote_cli(r1, reg) == 0
    capsys.readouterr()
    before = snapshot(reg)
    assert promote_cli(r2, reg) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "champion moved since gating" in err and "the base" in err and "v1" in err and "--force" in err
    assert snapshot(reg) == before
    assert promote_cli(r2, reg, "--force") == 0
    assert "champion moved" in " ".join(capsys.readouterr().err.split())
    v2 = registry.current(reg)
    assert v2.number == 2 and v2.forced
    assert json.loads((v2.dir / "PROMOTED.json").read_text())["forced"] is True
    event = registry.state(reg)["events"][-1]
    assert (event["action"], event["version"], event["from"], event["forced"]) == ("promote", 2, 1, True)
    # a report from before references (no `reference`) was not gated against v2 either
    r3, _ = release(gated_once, tmp_path, "three")
    r3.write_text(json.dumps({k: v for k, v in json.loads(r3.read_text()).items() if k != "reference"}))
    assert promote_cli(r3, reg) == 1
    assert "no recorded reference" in " ".join(capsys.readouterr().err.split())


def test_an_old_report_shape_still_promotes(tmp_path, gated_once):
    """Reports written before full checkpoints: candidate = {adapter, adapter_sha256, base}, no reference."""
    report, adapter = release(gated_once, tmp_path, "old")
    d = json.loads(report.read_text())
    d["candidate"] = {k: d["candidate"][k] for k in ("adapter", "adapter_sha256", "base")}
    d.pop("reference")
    report.write_text(json.dumps(d))
    reg = tmp_path / "registry"
    assert promote_cli(report, reg) == 0
    v1 = registry.current(reg)
    assert v1.form == "adapter" and v1.sha256 == sha256_dir(adapter) and v1.reference is None


def test_a_full_checkpoint_promotes_with_form_full(tmp_path, tiny_base, gated_once):
    report, full = release(gated_once, tmp_path, "full", full_from=tiny_base.dir)
    reg = tmp_path / "registry"
    assert promote_cli(report, reg) == 0
    v1 = registry.current(reg)
    assert v1.form == "full" and v1.sha256 == sha256_dir(full)
    assert (v1.model / "config.json").is_file() and (v1.model / "tokenizer.json").is_file()
    assert (v1.model / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()
    assert registry.resolve(f"registry:{reg}").model == v1.model


def test_a_full_checkpoint_whose_weights_changed_after_gating_is_refused(tmp_path, tiny_base, gated_once, capsys):
    report, full = release(gated_once, tmp_path, "full", full_from=tiny_base.dir)
    gated_sha = json.loads(report.read_text())["candidate"]["sha256"]
    weights = full / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    reg = tmp_path / "registry"
    assert promote_cli(report, reg) == 1
    assert not reg.exists()
    err = " ".join(capsys.readouterr().err.split())
    assert "full checkpoint changed after gating" in err and str(full) in err
    assert gated_sha[:12] in err and sha256_dir(full, fresh=True)[:12] in err


def test_failed_report_is_refused_and_registry_untouched(tmp_path, gated_once, capsys):
    registry_dir = tmp_path / "registry"
    assert promote_cli(gated_once["fail"], registry_dir) == 1
    assert not registry_dir.exists()
    assert "did not pass" in " ".join(capsys.readouterr().err.split())


def test_a_report_that_says_pass_over_a_failed_gate_is_refused(tmp_path, gated_once, capsys):
    report, _ = release(gated_once, tmp_path, "edited")
    d = json.loads(report.read_text())
    d["gates"][0]["verdict"] = "fail"  # the stated verdict still says pass: promote re-derives it from the gates
    report.write_text(json.dumps(d))
    assert promote_cli(report, tmp_path / "registry") == 1
    assert not (tmp_path / "registry").exists()
    assert "although the report says pass" in " ".join(capsys.readouterr().err.split())


def test_adapter_changed_after_gating_is_refused(tmp_path, gated_once, capsys):
    report, adapter = release(gated_once, tmp_path, "changed")
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the weights
    weights.write_bytes(bytes(data))
    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()
    (registry_dir / "keep.txt").write_text("mine")
    assert promote_cli(report, registry_dir) == 1
    assert sorted(p.name for p in registry_dir.iterdir()) == ["keep.txt"]
    assert "adapter changed after gating" in " ".join(capsys.readouterr().err.split())


def test_not_a_report_is_bad_input(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text("{}")
    assert promote_cli(bad, tmp_path / "reg") == 2
    assert promote_cli(tmp_path / "missing.json", tmp_path / "reg") == 2
    assert not (tmp_path / "reg").exists()
