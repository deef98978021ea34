from pathlib import Path

import pytest

from harness.config import load_config
from harness.core.errors import ConfigError, HarnessError

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "release.toml"
    p.write_text(text)
    return p


GOOD = """
[model]
base = "smollm2-135m-instruct"
adapter = "adapter"

[gates.perplexity]
data = "data/eval.jsonl"
min_relative_improvement = 0.05
"""


def test_valid_config_resolves_paths_relative_to_the_file(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.model.adapter == str(tmp_path / "adapter")
    (g,) = cfg.gates
    assert g.name == "perplexity" and g.required is True
    assert g.params.data == str(tmp_path / "data" / "eval.jsonl")
    assert g.params.min_relative_improvement == 0.05


def test_unknown_key_names_key_line_and_suggests_the_fix(tmp_path):
    p = _write(tmp_path, GOOD.replace("min_relative_improvement", "min_relative_improvment"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "[gates.perplexity] min_relative_improvment (line 8)" in msg
    assert "did you mean 'min_relative_improvement'" in msg


def test_all_problems_reported_together(tmp_path):
    text = GOOD + '\nbatch_size = "8"\n[gates.perplexty]\ndata = "x"\n[modle]\nbase = "x"\n'
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, text))
    assert len(e.value.problems) == 3
    msg = str(e.value)
    assert "batch_size" in msg and "must be an integer" in msg
    assert "did you mean [gates.perplexity]" in msg
    assert "[modle]: unknown section; did you mean [model]" in msg


def test_missing_required_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "[gates.perplexity]\nmin_relative_improvement = 0.1\n"))
    msg = str(e.value)
    assert "[model]: missing" in msg
    assert "missing required key 'data'" in msg


def test_out_of_range_value_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"confidence.*between 0 and 1"):
        load_config(_write(tmp_path, GOOD + "confidence = 1.5\n"))


def test_no_gates_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no gate configured"):
        load_config(_write(tmp_path, '[model]\nbase = "x"\nadapter = "y"\n'))


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="not valid TOML"):
        load_config(_write(tmp_path, "[model\nbase = 1"))
    with pytest.raises(HarnessError, match="release config not found"):
        load_config(tmp_path / "nope.toml")


def test_required_false_is_read(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD + "required = false\n"))
    assert cfg.gates[0].required is False


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_example_config_loads(path):
    cfg = load_config(path)
    assert cfg.gates
    if "[fine_tune]" in path.read_text():
        assert load_config(path, purpose="train").fine_tune is not None


def test_fine_tune_section_is_validated(tmp_path):
    text = '[model]\nbase = "x"\n\n[fine_tune]\nmethod = "dora"\nr = 0\nlearnig_rate = 1e-4\n'
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, text), purpose="train")
    msg = str(e.value)
    assert "[fine_tune] method (line 5): must be one of lora, qlora" in msg
    assert "did you mean 'learning_rate'" in msg
    assert "train" in msg and "required for the sft stage" in msg


def test_an_openai_backend_needs_its_server_and_served_names(tmp_path):
    p = _write(tmp_path, GOOD.replace('adapter = "adapter"', 'adapter = "adapter"\nbackend = "openai"'))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    for key in ("base_url", "served_base", "served_candidate"):
        assert f"[model] {key}" in msg and 'is required with backend = "openai"' in msg
    bad = _write(tmp_path, GOOD.replace('adapter = "adapter"', 'adapter = "adapter"\nbackend = "vllm-remote"'))
    with pytest.raises(
        ConfigError, match=r"\[model\] backend .*unknown backend 'vllm-remote'; known: hf, openai, vllm"
    ):
        load_config(bad)
    ok = GOOD.replace(
        'adapter = "adapter"',
        'adapter = "adapter"\nbackend = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\nserved_base = "base"\n'
        'served_candidate = "cand"\nsend_seed = false\ncandidate_base_url = "http://127.0.0.1:8001/v1"',
    )
    m = load_config(_write(tmp_path, ok)).model
    o = m.options
    assert (m.backend, o.served_candidate, o.max_concurrency, o.send_seed) == ("openai", "cand", 32, False)
    assert (o.base_url, o.candidate_base_url) == ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1")


def test_a_key_of_another_backend_is_an_error_that_names_its_backend(tmp_path):
    """A server URL left in a config that runs in-process would be silently unused: it is named, with the fix."""
    p = _write(tmp_path, GOOD.replace('adapter = "adapter"', 'adapter = "adapter"\nbase_url = "http://h:8000/v1"'))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert '[model] base_url (line 5): a key of backend "openai"; this config\'s backend is "hf"' in str(e.value)
    assert 'set backend = "openai"' in str(e.value)
