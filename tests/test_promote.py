import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from harness.cli import main
from harness.core import registry
from harness.core.hashing import sha256_dir
from harness.pipeline import run
from reports.types import CONTENT_HASH, content_sha256
from tests.helpers import TEXT_ROWS, write_config, write_jsonl


@pytest.fixture(scope="module")
def gated_once(tmp_path_factory, tiny_base, tiny_zero_adapter):
    """Gate a private copy of the adapter once for the module; `margin` picks pass (-0.5) or fail (0.0). Also
    holds what `release` gates its own candidates with: the base, the data and the module's measurement cache."""
    root = tmp_path_factory.mktemp("gated")
    data = write_jsonl(root / "data" / "eval.jsonl", TEXT_ROWS)
    out = {"base": tiny_base.dir, "data": data, "cache": root / "cache"}
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
    gated_once,
    tmp_path: Path,
    name: str,
    *,
    full_from: Path | None = None,
    reference: str = "base",
    cache: Path | None = None,
) -> tuple[Path, Path]:
    """A passing report of its own, gated for real, about a private candidate `name` (distinct content: a NOTE
    file): a copy of the gated adapter, or with `full_from` a copy of that full model directory, compared with
    `reference`. Returns (report.json, candidate directory)."""
    cand = tmp_path / name
    shutil.copytree(full_from or json.loads(gated_once["pass"].read_text())["candidate"]["path"], cand)
    (cand / "NOTE.txt").write_text(name)
    if full_from is not None:  # a checkpoint of its own: every weight nudged by 0.1%
        weights = load_file(cand / "model.safetensors")
        save_file({k: v * 1.001 for k, v in weights.items()}, cand / "model.safetensors", metadata={"format": "pt"})
    cfg = write_config(
        tmp_path / f"{name}.toml",
        base=str(gated_once["base"]),
        adapter=cand,
        data=gated_once["data"],
        cache_dir=cache or gated_once["cache"],
        min_relative_improvement=-0.5,
    )
    text = cfg.read_text().replace("[model]\n", f'[model]\nreference = "{reference}"\n', 1)
    cfg.write_text(text.replace("adapter = ", "candidate = ", 1))  # a full checkpoint is no adapter
    result = run(cfg, tmp_path / f"{name}-report")
    assert result.passed
    return result.files["json"], cand


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
    r2, a2 = release(gated_once, tmp_path, "two", reference=f"registry:{reg}")
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


def test_an_old_report_without_its_run_is_refused_with_the_fix(tmp_path, gated_once, capsys):
    """Reports from before promotion re-derived verdicts (no run id, no content hash) cannot be checked."""
    report, _ = release(gated_once, tmp_path, "old")
    d = json.loads(report.read_text())
    d["candidate"] = {k: d["candidate"][k] for k in ("adapter", "adapter_sha256", "base")}
    for key in ("reference", "content_sha256"):
        d.pop(key)
    d["manifest"].pop("run_id")
    report.write_text(json.dumps(d))
    reg = tmp_path / "registry"
    assert promote_cli(report, reg) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no content_sha256" in err and "gate the candidate again" in err
    assert not reg.exists()


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


def forged(tmp_path: Path, report: Path, edit, *, reseal: bool) -> Path:
    """A copy of `report` edited by `edit(dict)`; with `reseal`, by a forger who also recomputes its content hash."""
    d = json.loads(report.read_text())
    edit(d)
    if reseal:
        d[CONTENT_HASH] = content_sha256(d)
    out = tmp_path / "forged" / "report.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(d, indent=2))
    return out


def refused(report: Path, reg: Path, capsys) -> str:
    assert promote_cli(report, reg) == 1
    assert not reg.exists()  # nothing promoted, no registry left behind
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_a_blocked_report_forged_to_pass_is_refused(tmp_path, gated_once, capsys, reseal):
    def to_pass(d):
        d["verdict"] = "pass"
        if reseal:  # a thorough forger makes the gates agree too
            d["gates"][0]["verdict"], d["blocking"] = "pass", []

    err = refused(forged(tmp_path, gated_once["fail"], to_pass, reseal=reseal), tmp_path / "registry", capsys)
    if reseal:
        assert 'gates[perplexity].verdict: the report says "pass", re-derived "fail"' in err
        assert "does not match the run that wrote it" in err
    else:
        assert "content_sha256" in err and "edited after `harness gate` wrote it" in err


@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_a_report_with_an_edited_number_is_refused_naming_the_field(tmp_path, gated_once, capsys, reseal):
    said = json.loads(gated_once["pass"].read_text())["gates"][0]["candidate"]

    def better(d):
        d["gates"][0]["candidate"] = said * 0.5  # a perplexity twice as good as measured

    err = refused(forged(tmp_path, gated_once["pass"], better, reseal=reseal), tmp_path / "registry", capsys)
    if reseal:
        assert f"gates[perplexity].candidate: the report says {said * 0.5}" in err and f"re-derived {said}" in err
    else:
        assert "content_sha256" in err


def test_a_report_whose_candidate_was_swapped_for_another_model_is_refused(tmp_path, gated_once, capsys):
    """Gate adapter A, then point the report at a never-gated B (with B's true hash): B is not promoted."""
    other = tmp_path / "other"
    shutil.copytree(json.loads(gated_once["pass"].read_text())["candidate"]["path"], other)
    (other / "NOTE.txt").write_text("never gated")
    sha = sha256_dir(other, fresh=True)

    def swap(d):
        d["candidate"].update(path=str(other), adapter=str(other), sha256=sha, adapter_sha256=sha)

    err = refused(forged(tmp_path, gated_once["pass"], swap, reseal=True), tmp_path / "registry", capsys)
    assert "candidate." in err and "re-derived" in err and str(other) in err


def test_a_report_whose_measurements_are_not_in_the_cache_is_refused_with_the_fix(tmp_path, gated_once, capsys):
    cache = tmp_path / "own-cache"
    report, _ = release(gated_once, tmp_path, "elsewhere", cache=cache)
    shutil.rmtree(cache)  # promoted on another machine, or after the cache was cleared
    err = refused(report, tmp_path / "registry", capsys)
    assert "is not in the cache" in err and str(cache) in err and "gate the candidate again" in err
