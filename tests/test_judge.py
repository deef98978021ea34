"""The `judge` gate end to end: answers from the tiny model (base and a damaging adapter), judged through the
real `openai` client against real HTTP servers on 127.0.0.1 (scripted judges for the protocol and faults)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.pipeline import run
from judges.backends import Reply
from judges.protocol import OrderVerdict, PairJudgement, parse_pairwise, parse_score
from tests.helpers import write_jsonl
from tests.judge_server import ScriptedJudge, always_a, prefers_longer

PROMPTS = [
    {"id": f"q{i}", "prompt": p}
    for i, p in enumerate(
        [
            "The payments API is down. What first?",
            "Explain what a message queue is.",
            "Write one line about the login service.",
            "Summarise the incident in a sentence.",
            "Why did the search cluster slow down?",
            "What is a rollback?",
        ]
    )
]


def _config(tmp_path, tiny_base, adapter, url, *, cache="cache", seed=1234, **judge) -> str:
    data = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)
    opts = {
        "backend": "openai",
        "model": "scripted-judge",
        "base_url": url,
        "axes": [],
        "max_new_tokens": 12,
        "timeout": 5,
        "retries": 2,
        **judge,
    }
    lines = [
        "[model]",
        f'base = "{tiny_base.dir}"',
        f'adapter = "{adapter}"',
        "[run]",
        f'cache_dir = "{tmp_path / cache}"',
        f"seed = {seed}",
        "[gates.judge]",
        f'data = "{data}"',
    ] + [f"{k} = {json.dumps(v)}" for k, v in opts.items()]
    path = tmp_path / "release.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _gate(cfg, out=None):
    (g,) = run(cfg, out).report.gates
    return g


def test_a_judge_that_always_picks_a_gives_ties_not_wins(tmp_path, tiny_base, tiny_damage_adapter):
    with ScriptedJudge(always_a) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url))
        assert judge.chat_requests == 2 * len(PROMPTS)  # both orders of every prompt
    assert g.details["ties"] == len(PROMPTS) and g.details["wins"] == g.details["losses"] == 0
    assert g.candidate == 0.5
    q = g.details["quality"]
    assert q["swap_consistency"] == 0 and q["tie_rate"] == 1 and q["position_a_rate"] == 1
    assert "swap consistency 0%" in g.explanation
    # every request was blind: no model name or variant in what the judge saw
    for body in judge.requests:
        text = body["messages"][-1]["content"].lower()
        assert "candidate" not in text and "base" not in text and body["temperature"] == 0


def test_a_judge_that_always_answers_a_makes_the_gate_inconclusive_never_pass(tmp_path, tiny_base, tiny_damage_adapter):
    """The demo's failure: win rate 0.5, CI [0.5, 0.5], which used to pass. The floors make it inconclusive,
    whatever min_win_rate says; switched off, the same judgements pass again (so the floors decide it)."""
    with ScriptedJudge(always_a) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url))
        lenient = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, min_win_rate=0.0))
        off = _gate(
            _config(
                tmp_path,
                tiny_base,
                tiny_damage_adapter,
                judge.url,
                min_swap_consistency=0.0,
                max_position_bias=1.0,
                max_tie_rate=1.0,
            )
        )
        assert judge.chat_requests == 2 * len(PROMPTS)  # the later runs were answered from the cache
    assert g.verdict == lenient.verdict == "inconclusive"
    assert g.explanation.startswith(
        "The judge cannot discriminate: swap consistency 0%, picks A 100%, ties 100% "
        "(floors: swap consistency >= 50%, one position <= 80%, ties <= 50%"
    )
    assert "stronger judge model" in g.explanation and "judge prompt and endpoint" in g.explanation
    f = g.details["floors"]
    assert f["failed"] == ["swap consistency", "position bias", "tie rate"]
    assert f["measured_on"] == len(PROMPTS) and f["identical_answers"] == 0
    assert (f["swap_consistency"], f["position_bias"], f["position_bias_side"], f["tie_rate"]) == (0, 1, "A", 1)
    assert (f["min_swap_consistency"], f["max_position_bias"], f["max_tie_rate"]) == (0.5, 0.8, 0.5)
    assert g.details["quality"]["position_a_rate"] == 1 and g.details["checks"] == {"win rate": "pass"}
    assert g.candidate == 0.5 and g.ci == (0.0, 0.0)  # the interval alone would have passed
    assert off.verdict == "pass" and off.details["floors"]["failed"] == []
    assert "cannot discriminate" not in off.explanation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_always_a_judge_is_inconclusive_over_three_seeds(tmp_path, tiny_base, tiny_damage_adapter, seed):
    with ScriptedJudge(always_a) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, seed=seed))
    assert g.verdict == "inconclusive"
    assert g.details["floors"]["failed"] == ["swap consistency", "position bias", "tie rate"]
    assert g.explanation.startswith("The judge cannot discriminate: swap consistency 0%, picks A 100%, ties 100%")


@pytest.mark.parametrize(
    ("rule", "start", "failed"),
    [
        (
            lambda p, n: "[[B]]" if "[Answer A]" in p else "Score: 3",
            "swap consistency 0%, picks B 100%, ties 100%",
            ["swap consistency", "position bias", "tie rate"],
        ),
        (
            lambda p, n: "Equal. [[C]]" if "[Answer A]" in p else "Score: 3",
            "swap consistency 100%, ties 100%",
            ["tie rate"],
        ),
    ],
    ids=["always-b", "always-tie"],
)
def test_other_judges_that_cannot_discriminate_are_inconclusive(
    tmp_path, tiny_base, tiny_damage_adapter, rule, start, failed
):
    with ScriptedJudge(rule) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, min_win_rate=0.0))
    assert g.verdict == "inconclusive" and g.details["floors"]["failed"] == failed
    assert g.explanation.startswith(f"The judge cannot discriminate: {start} (floors:")


def test_identical_answers_are_not_held_against_the_judge(tmp_path, tiny_base, tiny_zero_adapter):
    """A zero adapter answers exactly as the base: ties are right there, so the floors are measured only on
    prompts whose answers differ (none here) and the candidate, identical to the base, passes."""
    with ScriptedJudge(always_a) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_zero_adapter, judge.url))
    f = g.details["floors"]
    assert f["identical_answers"] == len(PROMPTS) and f["measured_on"] == 0 and f["failed"] == []
    assert g.details["quality"]["tie_rate"] == 1  # still reported over every prompt
    assert g.verdict == "pass" and "floors were not measured" in g.explanation


def test_a_consistent_judge_decides_wins_with_a_ci_and_shows_lost_prompts(tmp_path, tiny_base, tiny_damage_adapter):
    with ScriptedJudge(prefers_longer) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, min_win_rate=0.0))
    d = g.details
    assert d["wins"] + d["losses"] + d["ties"] == len(PROMPTS)
    assert d["quality"]["swap_consistency"] == 1.0 and d["quality"]["longer_answer_win_rate"] == 1.0
    assert g.ci[0] <= g.delta <= g.ci[1]
    assert d["floors"]["failed"] == [] and d["floors"]["position_bias"] == 0.5  # each order's pick, once each
    assert g.verdict == "pass" and "cannot discriminate" not in g.explanation
    assert len(g.evidence) == d["losses"]
    for ex in g.evidence:  # a lost prompt shows both answers; the winner (base) is the longer one
        assert len(ex.base_output) > len(ex.candidate_output)


def test_429_is_retried_and_then_succeeds(tmp_path, tiny_base, tiny_damage_adapter):
    with ScriptedJudge(always_a, status_first=429) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url))
    assert judge.statuses[0] == 429 and judge.statuses[1:] == [200] * (2 * len(PROMPTS))
    # every judgement arrived (all ties): the always-A judge is then judged like any other, below the floors
    assert g.verdict == "inconclusive" and g.details["ties"] == len(PROMPTS) and g.details["floors"]["failed"]


def test_malformed_output_is_retried_then_counted_as_a_parse_failure(tmp_path, tiny_base, tiny_damage_adapter):
    def first_malformed(prompt, n):  # odd requests malformed: each judgement succeeds on its retry
        return "I think both are fine" if n % 2 == 1 else always_a(prompt, n)

    with ScriptedJudge(first_malformed) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, concurrency=1))
    assert g.details["parse_failures"] == 0 and judge.chat_requests == 4 * len(PROMPTS)

    with ScriptedJudge(lambda p, n: "no verdict here") as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, cache="cache2", parse_retries=1))
    assert judge.chat_requests == 2 * 2 * len(PROMPTS)  # asked, retried once, for both orders
    assert g.verdict == "error" and g.details["parse_failures"] == len(PROMPTS)
    assert "could not be parsed" in g.explanation


def test_endpoint_down_at_start_exits_2_naming_the_url(tmp_path, tiny_base, tiny_damage_adapter, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    cfg = _config(tmp_path, tiny_base, tiny_damage_adapter, url, retries=0, timeout=2)
    with pytest.raises(HarnessError, match="unreachable"):
        run(cfg)
    assert main(["gate", "--config", cfg, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert url in (captured.out + captured.err).replace("\n", "")
    assert not (tmp_path / "out" / "report.json").exists()


def test_endpoint_dying_mid_run_keeps_judgements_and_a_rerun_resumes(tmp_path, tiny_base, tiny_damage_adapter):
    with ScriptedJudge(always_a, die_after=5) as judge:
        cfg = _config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, concurrency=1, retries=1, timeout=2)
        g = _gate(cfg)
    assert g.verdict == "error" and "stopped answering" in g.explanation
    port = judge.server.server_address[1]
    with ScriptedJudge(always_a, port=port) as judge2:  # the endpoint comes back where it was
        g = _gate(cfg)
    assert g.verdict == "inconclusive" and g.details["ties"] == len(PROMPTS)  # complete now; below the floors
    # the 5 judgements made before the endpoint died were not asked again
    assert judge2.chat_requests == 2 * len(PROMPTS) - 5


def test_the_api_key_never_reaches_reports_manifest_cache_or_logs(
    tmp_path, tiny_base, tiny_damage_adapter, monkeypatch, capfd, caplog
):
    secret = "sk-test-0123456789abcdefSECRET"
    monkeypatch.setenv("HARNESS_TEST_JUDGE_KEY", secret)
    with ScriptedJudge(always_a, key=secret) as judge:
        cfg = _config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, api_key_env="HARNESS_TEST_JUDGE_KEY")
        assert main(["-v", "gate", "--config", cfg, "--out", str(tmp_path / "out")]) == 1  # inconclusive blocks
        assert judge.chat_requests == 2 * len(PROMPTS)  # the key was really used (the server checks it)
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err + caplog.text
    for path in list((tmp_path / "out").rglob("*")) + list((tmp_path / "cache").rglob("*")):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "HARNESS_TEST_JUDGE_KEY" in json.dumps(report["manifest"])  # the variable's name is recorded, not its value

    monkeypatch.delenv("HARNESS_TEST_JUDGE_KEY")
    with pytest.raises(HarnessError, match="HARNESS_TEST_JUDGE_KEY is not set"):
        run(cfg)


def test_judge_config_errors_name_the_key(tmp_path, tiny_base, tiny_damage_adapter):
    from harness.config import load_config

    cfg = _config(tmp_path, tiny_base, tiny_damage_adapter, "http://127.0.0.1:9/v1", axes=["correctnes"])
    with pytest.raises(HarnessError, match=r"\[gates.judge\] axes .*unknown \['correctnes'\]"):
        load_config(cfg)
    for key, value in (("max_position_bias", 0.3), ("min_swap_consistency", 1.5), ("max_tie_rate", -0.1)):
        bad = _config(tmp_path, tiny_base, tiny_damage_adapter, "http://127.0.0.1:9/v1", **{key: value})
        with pytest.raises(HarnessError, match=rf"\[gates.judge\] {key} .*between"):
            load_config(bad)
    text = open(cfg).read().replace('base_url = "http://127.0.0.1:9/v1"\n', "")
    open(cfg, "w").write(text)
    with pytest.raises(HarnessError, match="base_url.*required"):
        load_config(cfg)


def test_parsers():
    assert parse_pairwise(Reply("A is clearer. [[B]] no wait [[A]]")) == ("A", "A is clearer. [[B]] no wait")
    assert parse_pairwise(Reply("tie [[C]]"))[0] == "tie"
    assert parse_pairwise(Reply("A"))[0] is None
    assert parse_pairwise(Reply("", {"A": 0.7, "B": 0.3}))[0] == "A"
    assert parse_score(Reply("Good. Score: 4"))[0] == 4.0
    assert parse_score(Reply("5"))[0] == 5.0
    assert parse_score(Reply("great"))[0] is None
    assert parse_score(Reply("", {"1": 0.0, "2": 0.0, "3": 0.5, "4": 0.5, "5": 0.0}))[0] == pytest.approx(3.5)


def test_outcomes_follow_fastchat():
    def pair(first, second):
        return PairJudgement("x", "q", "b", "c", OrderVerdict(first, "", None, 1), OrderVerdict(second, "", None, 1))

    assert pair("B", "A").outcome == "candidate"  # both orders name the candidate
    assert pair("A", "B").outcome == "base"
    assert pair("A", "A").outcome == "tie"  # position bias: disagreement is a tie
    assert pair("B", "tie").outcome == "tie"
    assert pair(None, "A").outcome is None and pair(None, "A").score is None


def test_hf_judge_scores_rubric_axes_from_logprobs(tmp_path, tiny_base, tiny_damage_adapter):
    cfg = _config(tmp_path, tiny_base, tiny_damage_adapter, "unused", axes=["correctness", "format"])
    text = open(cfg).read()
    text = text.replace('backend = "openai"', 'backend = "hf"')
    text = text.replace('model = "scripted-judge"', f'model = "{tiny_base.dir}"')
    text = text.replace('base_url = "unused"\n', "")
    open(cfg, "w").write(text)
    g = _gate(cfg)
    d = g.details
    assert d["mode"] == "choice" and d["parse_failures"] == 0 and d["judge"]["backend"] == "hf"
    assert d["wins"] + d["ties"] + d["losses"] == len(PROMPTS)
    for axis in ("correctness", "format"):
        r = d["rubric"][axis]
        assert r["scored"] == len(PROMPTS) and 1 <= r["base"] <= 5 and 1 <= r["candidate"] <= 5
    assert g.verdict in ("pass", "fail", "inconclusive")
    assert "plumbing check" not in g.explanation  # only said of the embedded 135M judge
    # a re-run asks the judge nothing: the judged pairs come from the cache (answers and judgements alike)
    again = run(cfg)
    (g2,) = again.report.gates
    assert again.cache_misses == 0 and again.cache_hits > 0 and g2.candidate == g.candidate
    assert g2.details["calls"] == d["calls"]  # what the judging took when it was measured


@contextmanager
def _harness_serve(name: str):
    """`harness serve` with the embedded model as a real process on a free loopback port; yields its /v1 URL."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "harness.cli", "serve", "--port", "0", "--name", name]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = next((ln.split(" on ")[1].split()[0] for ln in proc.stdout if ln.startswith("serving")), None)
        assert url and url.startswith("http://127.0.0.1:"), "harness serve did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_judge_gate_through_harness_serve_on_loopback(tmp_path, tiny_base, tiny_damage_adapter):
    """`harness serve` with the embedded model as a real process; the judge gate talks to it through the
    real openai client (logprobs), nothing mocked."""
    with _harness_serve("judge-135m") as url:
        cfg = _config(
            tmp_path,
            tiny_base,
            tiny_damage_adapter,
            url,
            model="judge-135m",
            logprobs=True,
            axes=["helpfulness"],
            timeout=120,
        )
        g = _gate(cfg, tmp_path / "out")
        import openai

        client = openai.OpenAI(base_url=url, api_key="none")
        with pytest.raises(openai.BadRequestError, match="max_tokens"):  # a bad request names the field
            client.chat.completions.create(
                model="judge-135m", messages=[{"role": "user", "content": "hi"}], max_tokens=0
            )
        with pytest.raises(openai.BadRequestError, match="serves 'judge-135m'"):
            client.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])
        reply = client.chat.completions.create(
            model="judge-135m", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0
        )
        assert reply.choices[0].message.content and reply.usage.completion_tokens <= 8
    d = g.details
    assert g.verdict != "error", g.explanation
    assert d["judge"] == {"backend": "openai", "base_url": url, "model": "judge-135m"}
    assert d["parse_failures"] == 0 and d["wins"] + d["ties"] + d["losses"] == len(PROMPTS)
    assert d["calls"]["asked"] == 2 * len(PROMPTS) + 2 * len(PROMPTS)  # both orders + one axis for both answers
    assert 1 <= d["rubric"]["helpfulness"]["base"] <= 5
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Judge quality:" in md and "Rubric (1-5):" in md and "| helpfulness |" in md


def test_max_prompts_judges_only_the_first_prompts(tmp_path, tiny_base, tiny_damage_adapter):
    with ScriptedJudge(always_a) as judge:
        g = _gate(_config(tmp_path, tiny_base, tiny_damage_adapter, judge.url, max_prompts=3))
    assert judge.chat_requests == 6 and g.details["ties"] == 3
    asked = {body["messages"][-1]["content"] for body in judge.requests}
    assert any(PROMPTS[0]["prompt"] in a for a in asked) and not any(PROMPTS[5]["prompt"] in a for a in asked)


@pytest.mark.slow
def test_a_server_without_prompt_log_probabilities_fails_the_perplexity_preflight(tmp_path, embedded_base, capsys):
    """`harness serve` (chat completions only) as the model server: perplexity cannot be measured through it, so
    the run exits 2 before any gate, naming base_url and the fix; never a wrong number."""
    from fine_tune.demo.triage import write_demo_data
    from tests.helpers import make_adapter

    data = write_demo_data(tmp_path / "data")["eval"]
    adapter = make_adapter(embedded_base, tmp_path / "noise", "noise", r=8, scale=0.02, seed=0)
    with _harness_serve("smol") as url:
        cfg = tmp_path / "release.toml"
        cfg.write_text(
            f'[model]\nbase = "smollm2-135m-instruct"\nadapter = "{adapter}"\nbackend = "openai"\nbase_url = "{url}"\n'
            'served_base = "smol"\nserved_candidate = "smol"\n\n'
            f'[run]\ncache_dir = "{tmp_path / "cache"}"\n\n[gates.perplexity]\ndata = "{data}"\n'
        )
        capsys.readouterr()
        assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    out = "".join(capsys.readouterr())
    assert "gives no prompt log-probabilities" in out and "base_url" in out and "vLLM" in out
    assert not (tmp_path / "out" / "report.json").exists()
