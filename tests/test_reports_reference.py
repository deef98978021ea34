"""The `n/a` verdict and the named reference, in every output (fast: hand-made results, no model)."""

import json
import xml.etree.ElementTree as ET

import pytest

from gates import (
    Example,
    GateContext,
    GateResult,
    MeasureRequest,
    blocking,
    gate,
    get_gate,
    not_applicable,
    release_verdict,
)
from gates.perplexity import PerplexityParams
from harness.pytest_plugin import GateFailed, check_gate
from probes.results import DocNLL, NLLMeasurement
from reports import Report, load_report, render_junit, render_markdown, write_reports
from reports.figures import statistical
from reports.power import power_section

MERGED = "the candidate is already merged (a full checkpoint): there is no adapter to merge"
REGISTRY_REF = {
    "form": "adapter",
    "path": "/x/reg/v3/adapter",
    "sha256": "ab12cd34ef56" + "0" * 52,
    "base": "smollm2-135m-instruct",
    "describe": "registry /x/reg v3, adapter sha256 ab12cd34ef56",
    "registry": {"dir": "/x/reg", "version": 3},
}
FULL_CANDIDATE = {
    "form": "full",
    "path": "/models/merged-v4",
    "sha256": "fe" * 32,
    "base": "smollm2-135m-instruct",
    "describe": "full checkpoint /models/merged-v4",
}
OLD_CANDIDATE = {"adapter": "/a/adapter", "adapter_sha256": "cd" * 32, "base": "smollm2-135m-instruct"}


def _g(verdict="pass", required=True, name=None, **kw):
    return GateResult(
        name=name or f"g-{verdict}", verdict=verdict, metric="m", explanation="e", required=required, **kw
    )


def _perplexity_result(**kw):
    return GateResult(
        name="perplexity",
        verdict="pass",
        metric="relative perplexity improvement (per token)",
        explanation="Candidate perplexity 3.1 vs base 3.5.",
        baseline=3.5,
        candidate=3.1,
        delta=0.11,
        threshold=0.05,
        ci=(0.07, 0.15),
        evidence=(Example("d1", "a document", base_score=3.0, candidate_score=3.3, note="per-token NLL"),),
        **kw,
    )


def _report(gates, *, reference=None, candidate=None, verdict=None):
    return Report(
        verdict=verdict or release_verdict(gates),
        gates=tuple(gates),
        candidate=candidate or OLD_CANDIDATE,
        manifest={"seed": 0},
        created_at="2025-01-01T00:00:00+00:00",
        reference=reference,
    )


# --- the verdict ---------------------------------------------------------------------------------------------------


def test_not_applicable_is_neither_a_pass_nor_a_block():
    na = GateResult.not_applicable("merge_parity", "the candidate is already merged")
    assert na.verdict == "n/a" and not na.blocks and not na.applicable and na.required
    assert na.explanation == "Not applicable: the candidate is already merged."
    assert na.reason_na == "the candidate is already merged"
    assert release_verdict([_g("pass"), na]) == "pass"
    assert release_verdict([_g("fail"), na]) == "fail"
    assert blocking([_g("pass"), na]) == []
    assert _g("pass").reason_na == ""


def test_a_release_with_only_not_applicable_gates_fails():
    na = GateResult.not_applicable("merge_parity", MERGED)
    assert release_verdict([na]) == "fail"
    assert release_verdict([na, GateResult.not_applicable("other", "no question", required=False)]) == "fail"
    assert release_verdict([]) == "fail"


def test_not_applicable_round_trips_through_dict():
    na = GateResult.not_applicable("merge_parity", MERGED, required=False, metric="max |delta logit|")
    back = GateResult.from_dict(json.loads(json.dumps(na.to_dict())))
    assert back == na and back.verdict == "n/a" and back.reason_na == MERGED


def test_merge_parity_applies_only_to_an_adapter():
    assert not_applicable("merge_parity", "adapter") is None
    assert not_applicable("merge_parity", "full") == MERGED
    assert not_applicable(get_gate("merge_parity"), "full") == MERGED
    assert not_applicable("perplexity", "full") is None and not_applicable("perplexity", "adapter") is None


def test_only_for_names_known_forms():
    with pytest.raises(ValueError, match="only_for"):
        gate("never-registered", params=PerplexityParams, requests=lambda p: [], only_for=("gguf",))


# --- the word for the reference in gate explanations ----------------------------------------------------------------


def _nll(per_token: list[float], tokens: int = 50) -> NLLMeasurement:
    docs = tuple(DocNLL(f"d{i}", v * tokens, tokens, tokens * 4, f"doc {i}") for i, v in enumerate(per_token))
    return NLLMeasurement(docs, max_length=1024, scored="all")


@pytest.mark.parametrize("word", ["base", "reference"])
def test_gate_explanations_name_the_reference(word):
    params = PerplexityParams(data="x.jsonl", min_relative_improvement=0.5)
    gdef = get_gate("perplexity")
    (req,) = gdef.requests(params)
    base = _nll([2.0 + 0.1 * (i % 5) for i in range(20)])
    cand = _nll([1.9 + 0.1 * (i % 3) for i in range(20)])
    kw = {} if word == "base" else {"reference": word}
    ctx = GateContext("perplexity", True, 0, {(req, "base"): base, (req, "candidate"): cand}, **kw)
    assert ctx.reference == word
    r = gdef.decide(params, ctx)
    assert r.verdict == "fail"
    assert f"vs {word} " in r.explanation and f"than its {word}." in r.explanation
    assert f"({word} PPL -> candidate PPL)" in r.evidence[0].note
    if word == "reference":
        assert "vs base" not in r.explanation and "its base" not in r.explanation


def test_gate_context_defaults_to_base():
    assert GateContext("x", True, 0).reference == "base"
    assert MeasureRequest("nll", "x").variants == ("base", "candidate")  # the variant key stays "base"


# --- the reports ----------------------------------------------------------------------------------------------------


def test_markdown_shows_not_applicable_apart_from_pass():
    na = GateResult.not_applicable("merge_parity", MERGED)
    md = render_markdown(_report([_perplexity_result(), na]))
    assert "PASS" in md.splitlines()[0]
    assert "| `merge_parity` | yes |" in md and "➖ n/a |" in md
    assert "- **Gates:** 1 pass, 1 n/a" in md
    assert f"- **Not applicable** (neither passed nor blocking): `merge_parity`: {MERGED}" in md
    assert "## Gates that did not pass" not in md
    assert "### ✅ `merge_parity`" not in md


def test_markdown_all_not_applicable_is_blocked_and_says_why():
    md = render_markdown(_report([GateResult.not_applicable("merge_parity", MERGED)]))
    assert md.startswith("# Release report: ❌ BLOCKED")
    assert "no gate applies to this candidate" in md


def test_markdown_names_a_registry_reference_and_says_reference():
    rep = _report([_perplexity_result()], reference=REGISTRY_REF, candidate=FULL_CANDIDATE)
    assert rep.reference_label == "reference"
    md = render_markdown(rep)
    assert "- **Reference:** registry /x/reg v3, adapter sha256 ab12cd34ef56\n" in md  # its hash once, not twice
    assert "- **Reference registry:** `/x/reg`, version 3" in md
    assert "- **Candidate:** full checkpoint /models/merged-v4 (sha256 `fefefefefefefefe…`)" in md
    assert "| gate | required | metric | reference | candidate | delta |" in md
    assert "| id | item | reference | candidate | note |" in md
    assert "forest plot: candidate - reference" in md
    assert "| gate | required | metric | base |" not in md and "| id | item | base |" not in md


def test_markdown_says_base_for_old_reports_and_a_base_reference():
    old = render_markdown(_report([_perplexity_result()]))
    assert "| gate | required | metric | base | candidate |" in old and "| id | item | base | candidate |" in old
    assert "**Reference:**" not in old
    assert "- **Candidate:** `/a/adapter` (adapter sha256 `cdcdcdcdcdcdcdcd…`)" in old
    assert "- **Base:** `smollm2-135m-instruct`" in old
    base_ref = {"form": "base", "path": "/b", "sha256": "12" * 32, "base": "smollm2-135m-instruct", "registry": None}
    base_ref["describe"] = "the base smollm2-135m-instruct"
    rep = _report([_perplexity_result()], reference=base_ref)
    assert rep.reference_label == "base"
    md = render_markdown(rep)
    assert "- **Reference:** the base smollm2-135m-instruct (sha256 `1212121212121212…`)" in md
    assert "| gate | required | metric | base | candidate |" in md and "Reference registry" not in md


def test_junit_marks_not_applicable_skipped_with_the_reason():
    na = GateResult.not_applicable("merge_parity", MERGED)
    xml = render_junit(_report([_perplexity_result(), na], reference=REGISTRY_REF))
    suite = ET.fromstring(xml.split("\n", 1)[1])
    assert suite.get("failures") == "0" and suite.get("errors") == "0" and suite.get("skipped") == "1"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "merge_parity")
    skipped = case.find("skipped")
    assert skipped is not None and MERGED in skipped.get("message")
    assert case.find("failure") is None and case.find("system-out") is None
    passed = next(c for c in suite.iter("testcase") if c.get("name") == "perplexity")
    assert "| reference=3.0 | candidate=3.3" in passed.find("system-out").text
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["reference.describe"] == REGISTRY_REF["describe"]
    old = render_junit(_report([_perplexity_result()]))
    assert "| base=3.0 |" in old and "<properties" not in old


def test_report_json_round_trip_keeps_reference_and_not_applicable(tmp_path):
    na = GateResult.not_applicable("merge_parity", MERGED)
    rep = _report([_perplexity_result(), na], reference=REGISTRY_REF, candidate=FULL_CANDIDATE)
    files = write_reports(rep, tmp_path)
    d = json.loads(files["json"].read_text())
    assert d["reference"] == REGISTRY_REF and d["candidate"]["form"] == "full"
    assert [g["verdict"] for g in d["gates"]] == ["pass", "n/a"] and d["blocking"] == []
    back = load_report(files["json"])
    assert back.reference == REGISTRY_REF and back.gates == rep.gates and back.reference_label == "reference"
    assert (tmp_path / "forest.png").is_file()
    old = dict(d)
    del old["reference"]
    assert Report.from_dict(old).reference is None and Report.from_dict(old).reference_label == "base"


def test_forest_and_power_table_leave_out_not_applicable():
    na = GateResult("x", "n/a", "m", "Not applicable: no.", ci=(0.0, 1.0), delta=0.5, details={"power": [_power_row()]})
    assert statistical((_perplexity_result(), na)) == [_perplexity_result()]
    rows = power_section([na, _perplexity_result(details={"power": [_power_row()]})], "reference")
    text = "\n".join(rows)
    assert "`perplexity`" in text and "`x`" not in text
    assert "from reference and candidate" in text and "independently of the reference" in text
    assert "reference + candidate" in text and "base" not in text
    assert "from base and candidate" in "\n".join(
        power_section([_perplexity_result(details={"power": [_power_row()]})])
    )


def _power_row():
    return {
        "measure": "relative PPL improvement",
        "items": 20,
        "sd": 0.1,
        "sd_source": "paired",
        "half_width": 0.04,
        "tolerance": None,
        "items_needed": None,
    }


def test_console_table_says_reference_and_shows_not_applicable():
    from harness.core.console import console
    from reports.console import print_summary

    na = GateResult.not_applicable("merge_parity", MERGED)
    with console.capture() as cap:
        print_summary(_report([_perplexity_result(), na], reference=REGISTRY_REF, candidate=FULL_CANDIDATE))
    out = cap.get()
    assert "reference" in _header(out) and "base" not in _header(out)
    assert "n/a" in out and "Not applicable: the candidate is already merged" in out and "PASS" in out
    with console.capture() as cap:
        print_summary(_report([_perplexity_result()]))
    header = _header(cap.get())
    assert "base" in header and "reference" not in header


def _header(console_out: str) -> str:
    return next(line for line in console_out.splitlines() if "gate" in line and "candidate" in line)


# --- the pytest plugin ----------------------------------------------------------------------------------------------


def test_plugin_skips_a_not_applicable_gate_with_the_reason():
    with pytest.raises(pytest.skip.Exception, match="not applicable: the candidate is already merged"):
        check_gate(GateResult.not_applicable("merge_parity", MERGED))
    with pytest.raises(pytest.skip.Exception, match="not applicable"):
        check_gate(GateResult.not_applicable("merge_parity", MERGED, required=False))
    assert check_gate(_g("pass")) is None
    with pytest.raises(GateFailed, match=r"reference=3\.0"):
        check_gate(_failed_perplexity(), "reference")


def _failed_perplexity():
    g = _perplexity_result()
    return GateResult.from_dict({**g.to_dict(), "verdict": "fail"})


def test_pictures_never_switch_the_users_matplotlib_backend(tmp_path):
    """Reports draw with matplotlib's Figure API: a caller's backend stays as it chose it, pyplot unimported."""
    import subprocess
    import sys

    code = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "from pathlib import Path\n"
        "from gates import GateResult\n"
        "from reports.figures import forest_plot\n"
        "g = GateResult('perplexity', 'pass', 'bpb', 'x', baseline=1.0, candidate=0.9, delta=0.1, threshold=0.05,"
        " ci=(0.08, 0.12))\n"
        f"assert forest_plot((g,), Path({str(tmp_path / 'f.png')!r})).stat().st_size > 1000\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
