"""`harness plan`, the power table in the report, and sequential looks, end to end on the tiny model."""

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.pipeline import plan_power, run
from tests.helpers import write_config


def _cfg(tmp_path, base, adapter, data, regression: str):
    return write_config(
        tmp_path / "release.toml",
        base=str(base.dir),
        adapter=adapter,
        data=data,
        cache_dir=tmp_path / "cache",
        extra='\n[gates.regression]\nscore = "likelihood"\n' + regression,
        min_relative_improvement=-0.5,
    )


def test_plan_prints_power_from_the_prior_then_from_the_cache(tmp_path, tiny_base, tiny_zero_adapter, text_data, capfd):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, "items = 100\nmax_items = 300\n")
    pl, table = plan_power(cfg)
    assert pl.looks["regression"][0] == (100, 200, 300)
    general, text = table["regression"]
    assert general.sd_source == "prior" and general.items == 300
    assert text.items == 180  # 60 general paragraphs a look (`text_items`), 180 of the 240 at the third
    assert main(["plan", "--config", str(cfg)]) == 0
    out = capfd.readouterr().out
    assert "looks at 100, 200, 300 items" in out and "prior" in out and "resolves" in out
    assert not (tmp_path / "cache").exists()  # planning measured nothing

    # a zero adapter changes nothing: decided at the first look; afterwards plan uses what was measured
    result = run(cfg, tmp_path / "out")
    g = next(g for g in result.report.gates if g.name == "regression")
    assert g.verdict == "pass" and g.details["items"] == 100 and g.details["sequential"]["look"] == 1
    assert g.delta == 0.0 and g.details["score"] == "likelihood"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## How much each gate can resolve" in md and "probability of the reference answer" in md
    _, table = plan_power(cfg)
    after = table["regression"][0]  # both measured on the first 100 of the 300 items: identical, sd 0
    assert after.sd_source == "paired" and after.items == 300 and after.half_width == 0.0 and after.resolves


def test_an_undecided_gate_looks_again_and_measures_only_new_items(tmp_path, tiny_base, tiny_damage_adapter, text_data):
    """The damaged candidate's general-text PPL is far off: with a tolerance so wide the likelihood part stays
    undecided at the first look, the gate takes its looks and says how many items it used."""
    cfg = _cfg(
        tmp_path,
        tiny_base,
        tiny_damage_adapter,
        text_data,
        "items = 40\nmax_items = 120\nmax_drop = 0.0\nmax_relative_increase = 1000.0\n"
        f'text = "{tmp_path / "text.jsonl"}"\ntext_items = 20\n',
    )
    (tmp_path / "text.jsonl").write_text(  # 30 paragraphs: 20 a look, so the second look's slice is short
        "".join(
            f'{{"id": "p{i}", "text": "Paragraph {i} is about rivers, towns and the weather of the north."}}\n'
            for i in range(30)
        )  # fmt: skip
    )
    result = run(cfg, tmp_path / "out")
    g = next(g for g in result.report.gates if g.name == "regression")
    seq = g.details["sequential"]
    assert seq["looks"] == [40, 80, 120]
    if g.verdict == "inconclusive":  # the budget ran out
        assert seq["look"] == 3 and g.details["items"] == 120 and "max_items" in g.explanation
    else:  # decided early: the later slices were never measured
        assert g.details["items"] == 40 * seq["look"]
    assert f"Look {seq['look']} of 3" in g.explanation
    # each look measured its own slices once per variant: 3 slices max x 2 variants, as many text slices, and the
    # perplexity gate's data x 2
    assert result.cache_misses == 2 * seq["look"] + 2 * seq["look"] + 2
    assert g.details["perplexity"]["verdict"] in ("pass", "fail")


def test_gate_refuses_a_non_empty_out_dir_and_names_the_gates_key(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, "")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["gate", "--config", str(cfg), "--out", str(out)]) == 2
    assert (out / "notes.txt").read_text() == "keep me" and not (out / "report.json").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg2 = _cfg(tmp_path, tiny_base, tiny_zero_adapter, empty, "")
    with pytest.raises(HarnessError, match=r"\[gates\.perplexity\] data") as e:
        run(cfg2)
    assert "no records" in str(e.value)
