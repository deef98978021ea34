"""The pytest plugin, run in a real pytest subprocess with pytester."""

import pytest

from tests.helpers import write_config

pytest_plugins = ["pytester"]


@pytest.fixture()
def gate_config(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    def _make(margin: float):
        return write_config(
            tmp_path / f"release{margin}.toml",
            base=str(tiny_base.dir),
            adapter=tiny_zero_adapter,
            data=text_data,
            cache_dir=tmp_path / "cache",
            min_relative_improvement=margin,
        )

    return _make


def test_passing_gate_passes_with_gate_name_as_id(pytester, gate_config, tmp_path):
    cfg = gate_config(-0.5)
    result = pytester.runpytest_subprocess("--harness-config", str(cfg), "--harness-out", str(tmp_path / "o"), "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*::perplexity PASSED*", "*harness: release PASS*"])
    assert (tmp_path / "o" / "report.md").is_file()


def test_failing_gate_fails_with_explanation_and_evidence(pytester, gate_config, tmp_path):
    cfg = gate_config(0.0)
    result = pytester.runpytest_subprocess("--harness-config", str(cfg), "--harness-out", str(tmp_path / "o"), "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*::perplexity FAILED*", "*gate 'perplexity' fail*", "*doc-*"])
    assert result.ret == 1


def test_bad_config_is_a_usage_error(pytester, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nbase = "x"\nadapter = "y"\n[gates.perplexty]\n')
    result = pytester.runpytest_subprocess("--harness-config", str(bad))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown gate*did you mean*perplexity*"])


def test_plugin_does_not_import_torch_at_collection(pytester, gate_config):
    cfg = gate_config(0.0)
    pytester.makeconftest(
        "import sys\ndef pytest_collection_finish(session):\n    print('TORCH_LOADED=' + str('torch' in sys.modules))\n"
    )
    result = pytester.runpytest_subprocess("--harness-config", str(cfg), "--collect-only", "-s")
    result.stdout.fnmatch_lines(["*TORCH_LOADED=False*"])
