"""The config reference is generated, so it cannot drift: docs/config.md, `harness gates`, the README's copy of its
output and the example configs that claim to list every key are all checked against the config dataclasses."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from fine_tune.spec import FineTuneSpec
from gates import gate_names, get_gate
from harness.cli import main
from harness.config_docs import REGENERATE, REQUIRED, config_markdown, gate_keys, gates_markdown, keys_of, toml_value
from harness.demo import DEMO_CONFIG

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
KEY_LINE = re.compile(r"^#?\s*([a-z_0-9]+)\s*=\s*(.+)$")  # a key, set or commented out
WORDS = {13: "thirteen", 14: "fourteen", 15: "fifteen", 16: "sixteen", 17: "seventeen", 18: "eighteen"}


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):  # rich would colour the tables
        monkeypatch.delenv(var, raising=False)


def _gates_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["gates", *args]) == 0
    return capsys.readouterr().out


def _section(text: str, name: str) -> dict[str, str]:
    """The keys of `[name]` in a TOML file, set or commented out, with their values as written."""
    keys, inside = {}, False
    for line in text.splitlines():
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            inside = header.group(1) == name
        elif inside and (m := KEY_LINE.match(line)):
            keys[m.group(1)] = m.group(2)
    return keys


def _value(written: str) -> str:
    return toml_value(tomllib.loads(f"v = {written}")["v"])


def test_docs_config_md_is_generated_from_the_code():
    assert (REPO / "docs" / "config.md").read_text(encoding="utf-8") == config_markdown(), (
        f"docs/config.md is stale: regenerate it with `{REGENERATE}`"
    )


def test_the_reference_covers_every_section_and_every_key():
    md = config_markdown()
    for heading in ("[model]", "[run]", "[data]", "[fine_tune]", *(f"[gates.{n}]" for n in gate_names())):
        assert f"`{heading}`" in md
    for f in dataclasses.fields(FineTuneSpec):
        assert f"| `{f.name}` |" in md


def test_harness_gates_lists_every_gate(capsys):
    out = _gates_output(capsys)
    for name in gate_names():
        assert f"[gates.{name}]" in out


def test_harness_gates_shows_the_perplexity_default_the_code_has(capsys):
    out = _gates_output(capsys, "perplexity")
    default = next(
        f.default for f in dataclasses.fields(get_gate("perplexity").params) if f.name == "min_relative_improvement"
    )
    row = next(line for line in out.splitlines() if re.match(r"[│|] min_relative_improvement ", line))
    assert re.search(rf"[│|]\s*{re.escape(repr(default))}\s*[│|]", row), row
    assert "[gates.pass_at_k]" not in out


def test_harness_gates_markdown_is_the_reference_section(capsys):
    out = _gates_output(capsys, "perplexity", "--markdown")
    assert out == gates_markdown(["perplexity"])
    assert out in config_markdown()


def test_harness_gates_refuses_an_unknown_gate(capsys):
    assert main(["gates", "perplexitty"]) == 2
    assert "did you mean 'perplexity'?" in capsys.readouterr().err


def test_readme_shows_what_harness_gates_prints(capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n\$ harness gates perplexity\n(.*?)```", readme, re.S)
    assert block, "the README's `harness gates perplexity` example is gone"
    assert block.group(1) == _gates_output(capsys, "perplexity")


def test_readme_names_every_gate_and_counts_the_demos():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"^Gates: (.*?)\.\n", readme, re.M | re.S)
    assert listed and sorted(re.findall(r"`(\w+)`", listed.group(1))) == gate_names()
    demo_gates = len(re.findall(r"^\[gates\.\w+\]", DEMO_CONFIG, re.M))
    assert f"section and {WORDS[demo_gates]} gates" in readme


@pytest.mark.parametrize("gate", ["perplexity", "length_drift"])
def test_example_release_config_lists_every_key_of_its_gates_at_its_default(gate):
    written = _section((REPO / "examples" / "release.toml").read_text(encoding="utf-8"), f"gates.{gate}")
    keys = gate_keys(gate)
    assert sorted(written) == sorted(k.name for k in keys)
    for k in keys:
        if k.default != REQUIRED:
            assert _value(written[k.name]) == k.default, f"[gates.{gate}] {k.name}"


def test_example_train_config_lists_every_fine_tune_key():
    written = _section((REPO / "examples" / "train-and-gate.toml").read_text(encoding="utf-8"), "fine_tune")
    assert sorted(written) == sorted(k.name for k in keys_of(FineTuneSpec))
