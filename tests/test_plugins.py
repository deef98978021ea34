"""Third-party gates and backends through entry points: tests/plugins/harness_example (one gate, one backend, no
file of the harness touched) is pip-installed for real into a folder on PYTHONPATH, and the CLI, run in a fresh
process, lists its gate and gates a release with both."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_jsonl

PLUGIN = Path(__file__).parent / "plugins" / "harness_example"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    r = subprocess.run([*pip, str(target), str(PLUGIN)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (target / "harness_example" / "gate.py").is_file()
    return target


def _harness(args: list[str], site: Path | None) -> subprocess.CompletedProcess:
    path = [str(site)] if site else []
    env = {**os.environ, "HARNESS_QUIET": "1", "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True)


def test_a_plugin_gate_is_listed_with_its_keys(site):
    listed = _harness(["gates"], site)
    assert listed.returncode == 0, listed.stderr
    assert "answer_chars" in listed.stdout and "perplexity" in listed.stdout
    one = _harness(["gates", "answer_chars"], site)
    assert one.returncode == 0 and "max_ratio" in one.stdout and "largest tolerated ratio" in one.stdout
    assert "answer_chars" not in _harness(["gates"], None).stdout  # not installed: not there


def _release(tmp_path: Path, base: Path, adapter: Path, log: Path) -> Path:
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [
            {"id": f"p{i}", "prompt": p, "check": {"type": "regex", "pattern": "."}}
            for i, p in enumerate(["Hello", "The payments API returned", "Why", "List"])
        ],
    )
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        f'[model]\nbase = "{base}"\nadapter = "{adapter}"\nbackend = "hf_logged"\nopen_log = "{log}"\n\n'
        f'[run]\ncache_dir = "{tmp_path / "cache"}"\n\n'
        f'[gates.answer_chars]\ndata = "{prompts}"\nmax_new_tokens = 8\n'
    )
    return cfg


def test_a_plugin_gate_and_backend_gate_a_release(tmp_path, site, tiny_base, tiny_zero_adapter):
    log = tmp_path / "opened.log"
    cfg = _release(tmp_path, tiny_base.dir, tiny_zero_adapter, log)
    r = _harness(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")], site)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (g,) = report["gates"]
    # a zero adapter answers as its base does: the same characters, ratio 1
    assert (g["name"], g["verdict"], g["delta"]) == ("answer_chars", "pass", 1.0)
    assert sorted(log.read_text().split()) == ["base", "candidate"]  # the plugin backend opened both
    assert "hf_logged" in json.dumps(report["manifest"])


def test_a_plugin_backend_key_is_checked_and_unknown_without_the_plugin(tmp_path, site, tiny_base, tiny_zero_adapter):
    cfg = _release(tmp_path, tiny_base.dir, tiny_zero_adapter, tmp_path / "no" / "such" / "opened.log")
    r = _harness(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")], site)
    assert r.returncode == 2 and "[model] open_log" in r.stderr and "its folder must exist" in r.stderr
    r = _harness(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")], None)
    assert r.returncode == 2 and "unknown backend 'hf_logged'; known: hf, openai, vllm" in r.stderr
    assert not (tmp_path / "out").exists()
