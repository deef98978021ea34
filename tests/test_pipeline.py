"""The pipeline end to end on a tiny model: verdicts, exit codes, cache, errors."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gates import registry
from harness.cli import main
from harness.measure import KINDS, MeasureKind
from harness.pipeline import run
from tests.helpers import write_config


def _cfg(tmp_path, base, adapter, data, extra="", **gate):
    return write_config(
        tmp_path / "release.toml",
        base=str(base.dir),
        adapter=adapter,
        data=data,
        cache_dir=tmp_path / "cache",
        extra=extra,
        **gate,
    )


def test_zero_adapter_blocked_exit_1_with_reports(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, min_relative_improvement=0.0)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "fail" and report["schema_version"] == 2
    (g,) = report["gates"]
    assert g["name"] == "perplexity" and g["verdict"] == "fail"
    assert g["delta"] == 0.0 and g["ci"] == [0.0, 0.0]
    for key in ("metric", "baseline", "candidate", "threshold", "explanation"):
        assert key in g
    for key in ("base", "adapter", "datasets", "seed", "packages", "config"):
        assert key in report["manifest"]
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Release report: ❌ BLOCKED")
    assert 'failures="1"' in (tmp_path / "out" / "junit.xml").read_text()


def test_lenient_margin_passes_exit_0(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, min_relative_improvement=-0.5)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verdict"] == "pass"


def test_damaging_adapter_fails(tmp_path, tiny_base, tiny_damage_adapter, text_data):
    result = run(_cfg(tmp_path, tiny_base, tiny_damage_adapter, text_data))
    (g,) = result.report.gates
    assert g.verdict == "fail" and g.candidate > g.baseline and g.ci[1] < 0
    assert g.evidence and g.evidence[0].candidate_score > g.evidence[0].base_score


def test_candidate_never_reads_the_base_or_another_candidates_numbers(
    tmp_path, tiny_base, tiny_zero_adapter, tiny_damage_adapter, text_data
):
    first = run(_cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data))
    assert (first.cache_hits, first.cache_misses) == (0, 2)
    second = run(_cfg(tmp_path, tiny_base, tiny_damage_adapter, text_data))
    assert (second.cache_hits, second.cache_misses) == (1, 1)  # base reused, candidate measured
    assert first.report.gates[0].candidate != second.report.gates[0].candidate
    assert first.report.gates[0].baseline == second.report.gates[0].baseline


def test_second_run_is_served_from_cache_without_loading_a_model(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data)
    harness = [sys.executable, "-m", "harness.cli", "gate", "--config", str(cfg)]
    env = {**os.environ, "HARNESS_QUIET": "1"}
    first = subprocess.run([*harness, "--out", str(tmp_path / "a")], env=env, capture_output=True, text=True)
    second = subprocess.run([*harness, "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True)
    assert first.returncode == second.returncode == 1, first.stderr + second.stderr
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert a["gates"] == b["gates"]
    # the second run measured nothing and loaded no model (behaviour, not wall-clock time, which is noisy here)
    assert b["manifest"]["cache"] == {**b["manifest"]["cache"], "hits": 2, "misses": 0}
    assert b["manifest"]["device"] is None and a["manifest"]["cache"]["misses"] == 2


def test_existing_report_is_not_overwritten(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"mine": true}')
    assert main(["gate", "--config", str(cfg), "--out", str(out)]) == 2
    assert (out / "report.json").read_text() == '{"mine": true}'
    assert main(["gate", "--config", str(cfg), "--out", str(out), "--overwrite"]) == 1


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_key", "unknown key"),
        ("malformed_jsonl", ":3: not valid JSON"),
        ("empty_data", "has no records"),
        ("missing_data", "data file not found"),
        ("missing_adapter", "adapter directory not found"),
        ("foreign_adapter", "does not fit the base model"),
        ("no_chat_template", "has chat rows, but the tokenizer has no chat template"),
    ],
)
def test_bad_input_exits_2_naming_the_place(
    case, expected, tmp_path, tiny_base, tiny_zero_adapter, text_data, embedded_base, capsys
):
    adapter, data, extra = tiny_zero_adapter, text_data, {}
    if case == "unknown_key":
        extra = {"min_relative_improvment": 0.1}
    elif case == "malformed_jsonl":
        data = tmp_path / "bad.jsonl"
        data.write_text('{"text": "a"}\n{"text": "b"}\n{"text": \n')
    elif case == "empty_data":
        data = tmp_path / "empty.jsonl"
        data.write_text("")
    elif case == "missing_data":
        data = tmp_path / "missing.jsonl"
    elif case == "missing_adapter":
        adapter = tmp_path / "no-adapter"
    elif case == "foreign_adapter":
        from tests.helpers import build_tiny_llama, make_adapter

        other = build_tiny_llama(tmp_path / "other", embedded_base.dir, hidden=32)
        adapter = make_adapter(other, tmp_path / "other-adapter")
    base = tiny_base
    if case == "no_chat_template":
        import shutil

        from harness.core.models import resolve_base
        from tests.helpers import write_jsonl

        shutil.copytree(tiny_base.dir, tmp_path / "plain")
        (tmp_path / "plain" / "chat_template.jinja").unlink()
        base = resolve_base(str(tmp_path / "plain"))
        data = write_jsonl(tmp_path / "chat.jsonl", [{"prompt": "q", "completion": "a"}])
    cfg = _cfg(tmp_path, base, adapter, data, **extra)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in " ".join(err.split()), err
    assert "fix" in err or "did you mean" in err
    assert not (tmp_path / "out" / "report.json").exists()


@dataclass(frozen=True)
class _NoParams:
    data: str = "unused"


@pytest.fixture()
def crashing_parts():
    @registry.gate("_crash_in_decide", params=_NoParams, requests=lambda p: [])
    def _crash(p, ctx):
        raise ZeroDivisionError("boom")

    KINDS["_crash"] = MeasureKind(run=lambda *a, **k: 1 / 0, load=lambda d: d, dump=lambda v: v)

    @registry.gate(
        "_crash_in_measure", params=_NoParams, requests=lambda p: [registry.MeasureRequest("_crash", p.data)]
    )
    def _measured(p, ctx):
        raise AssertionError("never decided")

    yield
    registry._REGISTRY.pop("_crash_in_decide")
    registry._REGISTRY.pop("_crash_in_measure")
    KINDS.pop("_crash")


def test_a_crash_inside_a_gate_is_an_error_verdict_that_blocks(
    tmp_path, tiny_base, tiny_zero_adapter, text_data, crashing_parts
):
    extra = f'\n[gates._crash_in_decide]\n\n[gates._crash_in_measure]\ndata = "{text_data}"\n'
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, extra=extra, min_relative_improvement=-0.5)
    result = run(cfg, tmp_path / "out")
    verdicts = {g.name: g.verdict for g in result.report.gates}
    assert verdicts == {"perplexity": "pass", "_crash_in_decide": "error", "_crash_in_measure": "error"}
    assert result.report.verdict == "fail"
    by_name = {g.name: g for g in result.report.gates}
    assert "ZeroDivisionError: boom" in by_name["_crash_in_decide"].explanation
    assert "measuring _crash of the base" in by_name["_crash_in_measure"].explanation
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out2")]) == 1


def test_a_run_with_failed_optional_gates_replays_the_same_and_promotes(
    tmp_path, tiny_base, tiny_zero_adapter, text_data, crashing_parts
):
    """Promotion replays a run from the cache: a measurement that crashed is recorded under the run's id and fails
    again with the same words, so the optional gates' `error` verdicts re-derive and the passing release promotes."""
    import json

    from harness.verify import disagreement, rederive

    extra = (
        "\n[gates._crash_in_decide]\nrequired = false\n\n"
        f'[gates._crash_in_measure]\nrequired = false\ndata = "{text_data}"\n'
    )
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, extra=extra, min_relative_improvement=-0.5)
    result = run(cfg, tmp_path / "out")
    assert result.passed and {g.verdict for g in result.report.gates} == {"pass", "error"}
    raw = json.loads(result.files["json"].read_text())
    assert disagreement(raw, rederive(raw, "report.json")) is None
    assert main(["promote", "--report", str(result.files["json"]), "--to", str(tmp_path / "registry")]) == 0


def test_report_command_rerenders_markdown(tmp_path, tiny_base, tiny_zero_adapter, text_data, capsys):
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data)
    main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")])
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out" / "report.json")]) == 0
    assert capsys.readouterr().out == (tmp_path / "out" / "report.md").read_text()
    assert main(["report", str(tmp_path / "nope.json")]) == 2


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "harness"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "gate" in out.stdout and "promote" in out.stdout


def test_pass_at_k_gate_end_to_end_and_cached(tmp_path, tiny_base, tiny_zero_adapter, text_data):
    from tests.helpers import write_jsonl

    suite = write_jsonl(
        tmp_path / "probes.jsonl",
        [
            {"id": "p1", "prompt": "The payments API returned", "check": {"type": "contains", "value": "errors"}},
            {"id": "p2", "prompt": "Latency on the search", "check": {"type": "json", "required": ["a"]}},
            {"id": "p3", "prompt": "hi", "check": {"type": "regex", "pattern": "."}},
        ],
    )
    extra = f'\n[gates.pass_at_k]\ndata = "{suite}"\nn = 2\nmax_new_tokens = 6\nmargin = -0.5\n'
    cfg = _cfg(tmp_path, tiny_base, tiny_zero_adapter, text_data, extra=extra, min_relative_improvement=-0.5)
    first = run(cfg, tmp_path / "a")
    g = {x.name: x for x in first.report.gates}["pass_at_k"]
    assert g.verdict == "pass" and g.details["n"] == 2 and g.details["items"] == 3
    assert g.baseline == g.candidate  # a zero adapter samples exactly what its base samples (same seed)
    again = run(cfg, tmp_path / "b")
    assert again.cache_misses == 0 and again.report.gates == first.report.gates
