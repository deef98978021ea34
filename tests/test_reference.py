"""Any candidate against any reference, on the tiny model: the same weights in two forms measure the same, last
release (from the registry) is the reference, its measurements are read back from the cache, and every input
that compares nothing or cannot be compared is refused before a model loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.models import check_adapter
from harness.pipeline import run
from tests.helpers import make_adapter


@pytest.fixture(scope="module")
def v1(tmp_path_factory, tiny_base) -> Path:
    """Last release: a small perturbation of the base (an adapter whose numbers differ from the base's)."""
    return make_adapter(tiny_base, tmp_path_factory.mktemp("v1") / "adapter", "noise", scale=0.05, seed=1)


@pytest.fixture(scope="module")
def v1_merged(tmp_path_factory, tiny_base, v1) -> Path:
    """The same weights as v1, shipped as a merged full checkpoint (weights, config and tokenizer)."""
    from harness.release.export import merge

    out = tmp_path_factory.mktemp("v1-merged") / "model"
    merge(tiny_base, check_adapter(v1, tiny_base), out)
    return out


def _config(tmp: Path, base, *, candidate: Path | str, reference: str = "base", data: Path, cache: Path, **gates):
    tmp.mkdir(parents=True, exist_ok=True)
    lines = ["[model]", f'base = "{base.dir}"', f'candidate = "{candidate}"', f'reference = "{reference}"', ""]
    lines += ["[run]", f'cache_dir = "{cache}"', "", "[gates.perplexity]", f'data = "{data}"']
    lines += [f"min_relative_improvement = {gates.pop('margin', -0.5)}", ""]
    for name, body in gates.items():
        lines += [f"[gates.{name}]", body, ""]
    path = tmp / "release.toml"
    path.write_text("\n".join(lines))
    return path


def _gates(result) -> dict:
    return {g.name: g for g in result.report.gates}


def test_an_adapter_and_its_merged_checkpoint_measure_the_same(tmp_path, tiny_base, v1, v1_merged, text_data):
    cache = tmp_path / "cache"
    as_adapter = run(_config(tmp_path / "a", tiny_base, candidate=v1, data=text_data, cache=cache, margin=0.0))
    as_full = run(
        _config(
            tmp_path / "f", tiny_base, candidate=v1_merged, data=text_data, cache=cache, margin=0.0, merge_parity=""
        ),  # fmt: skip
        tmp_path / "f" / "out",
    )
    a, f = _gates(as_adapter)["perplexity"], _gates(as_full)["perplexity"]
    assert a.candidate != a.baseline  # v1 really changes the numbers
    assert f.candidate == pytest.approx(a.candidate, rel=1e-3) and f.baseline == a.baseline
    assert f.verdict == a.verdict
    mp = _gates(as_full)["merge_parity"]  # no adapter to merge: not applicable, shown, neither pass nor block
    assert mp.verdict == "n/a" and "already merged" in mp.explanation and not mp.blocks
    report = json.loads((tmp_path / "f" / "out" / "report.json").read_text())
    assert report["candidate"]["form"] == "full" and report["reference"]["form"] == "base"
    assert [g["verdict"] for g in report["gates"] if g["name"] == "merge_parity"] == ["n/a"]
    assert "n/a" in (tmp_path / "f" / "out" / "report.md").read_text()


def test_last_release_against_its_own_merged_form_passes(tmp_path, tiny_base, v1, v1_merged, text_data):
    """Not inferior by more than 1%: the same weights, so it passes; and the report says which reference."""
    cfg = _config(tmp_path, tiny_base, candidate=v1_merged, reference=str(v1), data=text_data,
                  cache=tmp_path / "cache", margin=-0.01)  # fmt: skip
    res = run(cfg, tmp_path / "out")
    g = _gates(res)["perplexity"]
    assert g.verdict == "pass" and abs(g.delta) < 1e-3, g.explanation
    assert "reference" in g.explanation and "vs base" not in g.explanation
    md = (tmp_path / "out" / "report.md").read_text()
    assert check_adapter(v1, tiny_base).sha256[:12] in md and "| reference |" in md


def test_a_damaging_v2_against_v1_fails(tmp_path, tiny_base, v1, tiny_damage_adapter, text_data):
    cfg = _config(tmp_path, tiny_base, candidate=tiny_damage_adapter, reference=str(v1), data=text_data,
                  cache=tmp_path / "cache", margin=-0.01)  # fmt: skip
    g = _gates(run(cfg))["perplexity"]
    assert g.verdict == "fail" and g.candidate > g.baseline and g.ci[1] < 0


def test_v2_against_the_registry_reads_v1_from_the_cache_and_names_it(tmp_path, tiny_base, v1, text_data, capsys):
    cache, reg = tmp_path / "cache", tmp_path / "registry"
    first = _config(tmp_path / "r1", tiny_base, candidate=v1, data=text_data, cache=cache)
    assert main(["gate", "--config", str(first), "--out", str(tmp_path / "r1" / "out")]) == 0
    assert main(["promote", "--report", str(tmp_path / "r1" / "out" / "report.json"), "--to", str(reg)]) == 0
    v2 = make_adapter(tiny_base, tmp_path / "v2", "noise", scale=0.05, seed=2)
    second = _config(tmp_path / "r2", tiny_base, candidate=v2, reference=f"registry:{reg}", data=text_data,
                     cache=cache)  # fmt: skip
    res = run(second, tmp_path / "r2" / "out")
    assert (res.cache_hits, res.cache_misses) == (1, 1)  # v1's numbers read back; only v2 measured
    ref = res.report.reference
    assert ref["registry"] == {"dir": str(reg.resolve()), "version": 1} and ref["form"] == "adapter"
    assert ref["sha256"] == check_adapter(v1, tiny_base).sha256
    md = (tmp_path / "r2" / "out" / "report.md").read_text()
    assert "v1" in md and ref["sha256"][:12] in md and str(reg.resolve()) in md


def test_hf_shares_one_loaded_base_between_two_adapters(tiny_base, v1, tiny_damage_adapter):
    """Both adapters attached to one loaded base, each answering with its own weights (and the base without)."""
    import torch

    from harness.core.forms import resolve_form
    from harness.core.runtime.load import Runtimes

    ref = resolve_form(str(v1), tiny_base, key="model.reference")
    cand = resolve_form(str(tiny_damage_adapter), tiny_base, key="model.candidate")
    rts = Runtimes(tiny_base, cand.adapter, reference=ref, candidate=cand, dtype="float32")
    ids = [1, 502, 3002, 88, 17]
    got = {v: rts.get(v).logits(ids) for v in ("base", "candidate", "base", "candidate")}
    assert len(rts._models) == 1  # one loaded model for both
    alone = {
        v: Runtimes(tiny_base, f.adapter, dtype="float32").get("candidate").logits(ids) for v, f in
        (("base", ref), ("candidate", cand))
    }  # fmt: skip
    for v in got:
        assert torch.allclose(got[v], alone[v], atol=1e-5), v
    assert not torch.allclose(got["base"], got["candidate"])


def _code(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    return code, " ".join("".join(capsys.readouterr()).split())


def test_bad_pairs_exit_2_naming_the_key_and_write_nothing(tmp_path, tiny_base, v1, v1_merged, text_data, capsys,
                                                           embedded_base):  # fmt: skip
    out = tmp_path / "out"

    def gate(**kw) -> str:
        cfg = _config(tmp_path / "cfg", tiny_base, data=text_data, cache=tmp_path / "cache", **kw)
        code, err = _code(capsys, ["gate", "--config", str(cfg), "--out", str(out)])
        assert code == 2, err
        assert not (out / "report.json").exists()
        return err

    err = gate(candidate=v1, reference=str(v1))
    assert "the same model" in err and "model.reference" in err
    copy = shutil.copytree(v1, tmp_path / "v1-copy")  # the same content elsewhere is still the same model
    assert "the same model" in gate(candidate=copy, reference=str(v1))
    other = make_adapter(embedded_base, tmp_path / "other-base", "zero")  # made for the 135M: shapes do not fit
    err = gate(candidate=v1, reference=str(other))
    assert "does not fit the base" in err and "model.reference" in err
    err = gate(candidate=v1, reference=f"registry:{tmp_path / 'no-registry'}")
    assert "model.reference" in err and "harness promote" in err
    (tmp_path / "empty-registry").mkdir()
    assert "model.reference" in gate(candidate=v1, reference=f"registry:{tmp_path / 'empty-registry'}")
    bare = shutil.copytree(v1_merged, tmp_path / "no-tokenizer")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (bare / f).unlink(missing_ok=True)
    err = gate(candidate=bare)
    assert "no tokenizer" in err and "model.candidate" in err and "save_pretrained" in err
    other_tok = shutil.copytree(v1_merged, tmp_path / "other-tokenizer")
    tj = json.loads((other_tok / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a, b = list(vocab)[500:502]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # two token ids swapped: another tokenizer
    (other_tok / "tokenizer.json").write_text(json.dumps(tj))
    err = gate(candidate=other_tok, reference=str(v1))
    assert "tokenizer differs" in err and "perplexity" in err and "model.reference" in err


def _hub_stand_in(cache: Path, repo: str, files_from: Path) -> None:
    """A model repo laid out as huggingface_hub caches it (refs/main -> snapshots/<commit>/), from local files."""
    commit = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(files_from, root / "snapshots" / commit)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def test_hub_ids_load_from_the_hub_cache_as_adapter_or_full_model(
    tmp_path, tiny_base, v1, v1_merged, text_data, monkeypatch
):
    """The hub loading code, on local stand-ins (nothing downloads here): a hub adapter is gated against a hub
    full checkpoint of the same weights merged, through huggingface_hub's own cache lookup, offline."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    _hub_stand_in(hub, "acme/triage-v1-lora", v1)
    _hub_stand_in(hub, "acme/triage-v1-merged", v1_merged)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cfg = _config(tmp_path, tiny_base, candidate="acme/triage-v1-merged", reference="acme/triage-v1-lora",
                  data=text_data, cache=tmp_path / "cache", margin=-0.01)  # fmt: skip
    res = run(cfg)
    assert (res.report.candidate["form"], res.report.reference["form"]) == ("full", "adapter")
    assert res.report.reference["sha256"] == check_adapter(v1, tiny_base).sha256  # the same bytes, found via the hub
    g = _gates(res)["perplexity"]
    assert g.verdict == "pass" and abs(g.delta) < 1e-3, g.explanation
