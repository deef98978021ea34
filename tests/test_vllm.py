"""Gates through a real vLLM server (the `openai` runtime) on loopback, against the in-process `hf` runtime.

`.ci/run` (via `make test`) sets vLLM up in its own environment, `.venv-vllm` (it pins its own torch and
transformers); these tests start `vllm.entrypoints.openai.api_server` with the embedded SmolLM2-135M and two
LoRA adapters made in the session: `cand` (a small perturbation), `zero` (B = 0: the base's numbers) and `v1`
(another small perturbation: last release, the reference of the two-release tests).
Nothing is installed at test time. Without that environment they are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.pipeline import run
from tests.fault_proxy import FaultProxy
from tests.helpers import make_adapter

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _vllm_python() -> str | None:
    py = os.environ.get("HARNESS_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    return py if Path(py).is_file() else None


@pytest.fixture(scope="session")
def adapters(tmp_path_factory, embedded_base):
    d = tmp_path_factory.mktemp("vllm-adapters")
    return {
        "cand": make_adapter(embedded_base, d / "cand", "noise", r=8, scale=0.02, seed=0),
        "zero": make_adapter(embedded_base, d / "zero", "zero", r=8),
        "v1": make_adapter(embedded_base, d / "v1", "noise", r=8, scale=0.02, seed=1),
    }


@pytest.fixture(scope="session")
def vllm(embedded_base, adapters, tmp_path_factory):
    py = _vllm_python()
    if py is None:
        if os.environ.get("CI"):
            pytest.fail("vLLM's environment (.venv-vllm) is missing: `make test` sets it up")
        pytest.skip("vLLM is not set up here (make .venv-vllm/.installed)")
    from harness.release import vllm_server

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = vllm_server.start(
        embedded_base.dir, adapters, python=py, port=vllm_server.free_port(), log=log, max_model_len=1024
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    from fine_tune.demo.triage import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("vllm-data"))


@pytest.fixture(scope="session")
def eval10(demo_data, tmp_path_factory) -> Path:
    """The first 10 eval documents: what these tests compare is the backends' numbers, not their power, and vLLM
    answers log-likelihood requests one at a time (a document's number is its own, so 10 show any disagreement)."""
    return _first(demo_data["eval"], 10, tmp_path_factory.mktemp("eval10") / "eval10.jsonl")


@pytest.fixture(scope="module")
def cache(real_cache) -> Path:
    """The run's real-model cache: the `hf` runtime's numbers are measured once for every comparison (a served
    variant's cache key holds the server's URL and served name, so no served run reads them)."""
    return real_cache


def _config(
    tmp_path: Path, adapter: Path, gates: str, cache: Path, *, url: str | None = None, cand: str = "cand", **model
) -> Path:
    lines = ['base = "smollm2-135m-instruct"', f'adapter = "{adapter}"']
    if url:
        lines += ['backend = "openai"', f'base_url = "{url}"', 'served_base = "base"', f'served_candidate = "{cand}"']
        lines += ["send_seed = false"]  # vLLM's CPU build dies on seeded sampling requests batched together
    lines += [f"{k} = {json.dumps(v)}" for k, v in model.items()]
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / f"release-{'openai' if url else 'hf'}.toml"
    cfg.write_text("[model]\n" + "\n".join(lines) + f'\n\n[run]\ncache_dir = "{cache}"\n\n' + gates)
    return cfg


def _by_name(result):
    return {g.name: g for g in result.report.gates}


def _first(path: Path, n: int, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(Path(path).read_text().splitlines()[:n]) + "\n")
    return out


def test_perplexity_through_vllm_equals_hf_within_half_a_percent(tmp_path, vllm, adapters, eval10, cache):
    gates = f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = 0.0\n'
    hf = _by_name(run(_config(tmp_path, adapters["cand"], gates, cache)))["perplexity"]
    assert hf.candidate != hf.baseline  # the adapter changes the numbers: both variants were really compared
    served = run(_config(tmp_path / "one", adapters["cand"], gates, cache, url=vllm.url))
    rv = _by_name(served)["perplexity"]
    assert rv.verdict != "error", rv.explanation
    for ours, theirs in ((hf.baseline, rv.baseline), (hf.candidate, rv.candidate)):
        assert theirs == pytest.approx(ours, rel=0.005), (ours, theirs)
    rts = served.report.manifest["runtimes"]
    assert rts["candidate"]["engine"] == "openai" and rts["candidate"]["served_as"] == "cand"
    assert rts["candidate"]["parent"] == "base" and rts["base"]["server"] == vllm.url


def test_base_and_candidate_on_two_servers(tmp_path, vllm, adapters, eval10, cache, embedded_base, capsys):
    """The base on a second server (another port, as another machine would be), the candidate on the first; a
    cache of its own, so both variants are measured through their servers (10 eval documents: CI time)."""
    from harness.release import vllm_server

    gates = f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = 0.0\n'
    hf = _by_name(run(_config(tmp_path / "hf", adapters["cand"], gates, cache)))["perplexity"]
    log = tmp_path / "base-server.log"
    with vllm_server.start(
        embedded_base.dir, {}, python=_vllm_python(), port=vllm_server.free_port(), log=log, max_model_len=1024
    ) as base_server:
        two = tmp_path / "two"
        cfg = _config(two, adapters["cand"], gates, two / "cache", url=base_server.url, candidate_base_url=vllm.url)
        res = run(cfg, two / "out")
        wrong = _config(tmp_path / "wrong", adapters["cand"], gates, cache, url=vllm.url,
                        candidate_base_url=base_server.url)  # fmt: skip
        capsys.readouterr()
        assert main(["gate", "--config", str(wrong), "--out", str(tmp_path / "wrong" / "out")]) == 2
        err = "".join(capsys.readouterr())
        assert "does not serve 'cand'" in err and "candidate_base_url" in err  # the candidate's server, named
    rv = _by_name(res)["perplexity"]
    assert rv.verdict != "error", rv.explanation
    for ours, theirs in ((hf.baseline, rv.baseline), (hf.candidate, rv.candidate)):
        assert theirs == pytest.approx(ours, rel=0.005), (ours, theirs)
    assert res.report.manifest["cache"]["misses"] >= 2  # both variants measured here, none read from a cache
    rts = res.report.manifest["runtimes"]
    assert (rts["base"]["server"], rts["candidate"]["server"]) == (base_server.url, vllm.url)
    md = (two / "out" / "report.md").read_text()
    assert f"served as `base` by {base_server.url}" in md and f"served as `cand` by {vllm.url}" in md


def test_greedy_completions_equal_on_nine_in_ten_probe_prompts(vllm, adapters, embedded_base):
    from harness.core.models import check_adapter
    from harness.core.runtime import GenParams
    from harness.core.runtime.load import Runtimes
    from harness.core.runtime.openai import Served
    from probes.suites import load_suite

    convs = [list(i.messages) for i in load_suite("builtin:triage_probes").items][:20]  # 20: each costs CI time 4x
    info = check_adapter(adapters["cand"], embedded_base)
    local = Runtimes(embedded_base, info, dtype="float32")
    remote = Runtimes(embedded_base, info, backend="openai", state=Served(vllm.url, "base", "cand"))
    params = GenParams(max_new_tokens=24)
    for variant in ("base", "candidate"):
        ours = [c[0].text for c in local.get(variant).generate(convs, params)]
        theirs = [c[0].text for c in remote.get(variant).generate(convs, params)]
        equal = sum(a == b for a, b in zip(ours, theirs, strict=True))
        assert equal >= 0.9 * len(convs), (variant, equal, len(convs))
        tokens = [c[0].length for c in remote.get(variant).generate(convs[:3], params)]
        assert all(0 < t <= 24 for t in tokens)


def _head(tmp_path: Path, name: str, n: int) -> Path:
    """The first `n` items of a shipped suite (the verdict test runs every gate twice: its CI time counts)."""
    lines = (ROOT / "probes" / "data" / f"{name}.jsonl").read_text().splitlines()[:n]
    out = tmp_path / f"{name}-{n}.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_gate_verdicts_through_vllm_equal_hf(tmp_path, vllm, adapters, eval10, cache):
    tmp_path.mkdir(parents=True, exist_ok=True)
    gates = (
        f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = 0.0\n\n'
        f'[gates.pass_at_k]\ndata = "{_head(tmp_path, "triage_probes", 12)}"\nn = 2\nk = 1\ntemperature = 0.7\n'
        "top_p = 1.0\nmax_new_tokens = 24\n\n"
        f'[gates.regression]\ndata = "{_head(tmp_path, "general", 24)}"\nitems = 24\nmax_items = 24\n'
        'max_new_tokens = 24\ntext = ""\n\n'  # (the text's PPL through vLLM: the perplexity gate here and above)
        f'[gates.safety]\nharmful = "{_head(tmp_path, "safety_harmful", 12)}"\n'
        f'benign = "{_head(tmp_path, "safety_benign", 12)}"\nleak_suite = ""\nmax_new_tokens = 24\n'
    )  # every gate's plumbing through the server, on a few items each: every model call costs CI time twice
    hf = _by_name(run(_config(tmp_path, adapters["cand"], gates, cache)))
    served = _by_name(run(_config(tmp_path, adapters["cand"], gates, cache, url=vllm.url)))
    assert {n: g.verdict for n, g in served.items()} == {n: g.verdict for n, g in hf.items()}
    assert all(g.verdict != "error" for g in served.values()), [g.explanation for g in served.values()]


def test_the_base_served_as_the_candidate_is_caught(tmp_path, vllm, adapters, demo_data, cache, capsys):
    gates = f'[gates.perplexity]\ndata = "{demo_data["eval"]}"\n'
    cfg = _config(tmp_path, adapters["cand"], gates, cache, url=vllm.url, cand="zero")  # B = 0: the base's numbers
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr()
    assert "answered the candidate with the base model" in err.out + err.err
    assert "served_candidate" in err.out + err.err and not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize(
    "change, where, says",
    [
        ({"cand": "nonexistent"}, "served_candidate", "does not serve 'nonexistent'"),
        ({"url": "http://127.0.0.1:9/v1"}, "base_url", "unreachable"),
    ],
)
def test_bad_endpoint_input_exits_2_naming_the_key(
    tmp_path, vllm, adapters, demo_data, cache, capsys, change, where, says
):
    gates = f'[gates.perplexity]\ndata = "{demo_data["eval"]}"\n'
    kw = {"url": vllm.url, "cand": "cand", **change}
    cfg = _config(tmp_path, adapters["cand"], gates, cache, **kw)
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    out = "".join(capsys.readouterr())
    assert says in out and where in out


def test_429_and_500_are_retried_and_a_dying_endpoint_is_an_error(tmp_path, vllm, adapters, eval10, cache):
    gates = f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = 0.0\n'
    flaky = FaultProxy(vllm.url, faults=(429, 500, 429))
    try:
        ok = _by_name(run(_config(tmp_path / "flaky", adapters["cand"], gates, cache, url=flaky.url)))["perplexity"]
    finally:
        flaky.close()
    assert flaky.injected == [429, 500, 429] and ok.verdict != "error" and ok.candidate is not None, ok.explanation
    # preflight needs a handful of requests; the endpoint then dies while the gate measures
    dying = FaultProxy(vllm.url, die_after=12)
    try:
        res = run(_config(tmp_path / "dying", adapters["cand"], gates, cache, url=dying.url, timeout=30))
    finally:
        dying.close()
    (g,) = res.report.gates
    assert g.verdict == "error" and res.report.verdict == "fail"
    assert dying.url.removesuffix("/v1") in g.explanation and "500" in g.explanation


def test_the_in_process_vllm_backend_gives_the_hf_numbers_and_verdicts(tmp_path, adapters, eval10, cache):
    """`backend = "vllm"`: vLLM's engine in the harness process, here the harness installed in vLLM's environment
    (`make test` puts it there) and run as a user would, `python -m harness.cli gate`."""
    import subprocess

    py = _vllm_python()
    if py is None:
        if os.environ.get("CI"):
            pytest.fail("vLLM's environment (.venv-vllm) is missing: `make test` sets it up")
        pytest.skip("vLLM is not set up here (make .venv-vllm/.installed)")
    tmp_path.mkdir(parents=True, exist_ok=True)
    gates = (
        f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = 0.0\n\n'
        f'[gates.pass_at_k]\ndata = "{_head(tmp_path, "triage_probes", 12)}"\nn = 2\nk = 1\ntemperature = 0.7\n'
        "top_p = 1.0\nmax_new_tokens = 24\n"
    )
    v1 = str(adapters["v1"])  # v2 against v1: one engine, two LoRAs
    hf = _by_name(run(_config(tmp_path / "hf", adapters["cand"], gates, cache, reference=v1)))
    cfg = _config(tmp_path / "vllm", adapters["cand"], gates, cache, backend="vllm", reference=v1)
    out = tmp_path / "vllm" / "out"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [py, "-m", "harness.cli", "gate", "--config", str(cfg), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    got = {g["name"]: g for g in report["gates"]}
    assert {n: g["verdict"] for n, g in got.items()} == {n: g.verdict for n, g in hf.items()}
    ppl = got["perplexity"]
    assert ppl["baseline"] == pytest.approx(hf["perplexity"].baseline, rel=0.005)
    assert ppl["candidate"] == pytest.approx(hf["perplexity"].candidate, rel=0.005)
    rts = report["manifest"]["runtimes"]
    assert rts["base"]["engine"] == rts["candidate"]["engine"] == "vllm"
    assert "vllm, in-process on cpu" in (out / "report.md").read_text()
    assert report["reference"]["path"] == str(adapters["v1"].resolve())
    from harness.verify import disagreement, rederive  # promotion's replay, here in an environment without vLLM

    assert disagreement(report, rederive(report, "report.json")) is None


def test_backend_vllm_without_vllm_installed_exits_2_naming_the_key(tmp_path, adapters, demo_data, cache, capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is importable here")
    gates = f'[gates.perplexity]\ndata = "{demo_data["eval"]}"\n'
    cfg = _config(tmp_path, adapters["cand"], gates, cache, backend="vllm")
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    out = "".join(capsys.readouterr())
    assert "needs vLLM in this Python environment" in out and "backend" in out and "pip install vllm" in out


def test_a_local_tokenizer_unlike_the_servers_exits_2_naming_the_base(
    tmp_path, vllm, adapters, demo_data, cache, capsys
):
    """The same weights as the served base, but a local tokenizer that lower-cases its input: token counts and bits
    per byte would not mean the same, so the run stops before any gate, naming [model] base."""
    from harness.core.models import EMBEDDED_ALIAS, resolve_base

    src = resolve_base(EMBEDDED_ALIAS).dir
    local = tmp_path / "base-lowercased"
    local.mkdir()
    for f in src.iterdir():
        if f.name != "tokenizer.json" and f.is_file():
            (local / f.name).symlink_to(f)
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["normalizer"] = {"type": "Lowercase"}
    (local / "tokenizer.json").write_text(json.dumps(tok))
    gates = f'[gates.perplexity]\ndata = "{demo_data["eval"]}"\n'
    cfg = _config(tmp_path, adapters["cand"], gates, cache, url=vllm.url)
    cfg.write_text(cfg.read_text().replace('base = "smollm2-135m-instruct"', f'base = "{local}"'))
    capsys.readouterr()
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    out = "".join(capsys.readouterr())
    assert "tokenises differently from the local tokenizer" in out and "[model] base" in out


def test_lm_eval_tasks_give_the_same_decision_through_vllm(tmp_path, vllm, adapters, cache):
    """The local lm-eval tasks (multiple choice and generative) gated in-process and through the vLLM server: the
    same verdict per task, and the same per-document answers but for near-ties (vLLM's log-probabilities differ
    from torch's by ~1e-4)."""
    pytest.importorskip("lm_eval")
    import shutil

    shutil.copytree(ROOT / "examples" / "lmeval_tasks", tmp_path / "lmeval_tasks")
    gates = (
        '[gates.regression]\ntasks = ["harness_general_mc", "harness_arithmetic_gen"]\n'
        'task_paths = ["lmeval_tasks"]\ntext = ""\nlimit = 20\n'  # 80 + 20 requests a variant: one at a time to vLLM
    )
    hf = _by_name(run(_config(tmp_path, adapters["cand"], gates, cache)))["regression"]
    served = _by_name(run(_config(tmp_path, adapters["cand"], gates, cache, url=vllm.url)))["regression"]
    assert hf.verdict != "error" and served.verdict == hf.verdict, served.explanation
    ours = {t["name"]: t for t in hf.details["lm_eval"]["tasks"]}
    theirs = {t["name"]: t for t in served.details["lm_eval"]["tasks"]}
    assert set(ours) == set(theirs) == {"harness_general_mc", "harness_arithmetic_gen"}
    for name, t in ours.items():
        assert theirs[name]["verdict"] == t["verdict"] and theirs[name]["items"] == t["items"]
        assert t["items"] == 20
        for side in ("base", "candidate"):  # at most one document in 20 answered differently
            assert abs(theirs[name][side] - t[side]) <= 0.05 + 1e-9, (name, side, t[side], theirs[name][side])


def test_v2_against_v1_on_a_vllm_server_gives_the_hf_verdicts(tmp_path, vllm, adapters, eval10, cache, capsys):
    """Two releases as LoRAs of one server (`--lora-modules v1=... cand=...`): the reference is `served_reference`,
    and the verdicts and numbers are those of the in-process `hf` runtime with the same two adapters."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    gates = (
        f'[gates.perplexity]\ndata = "{eval10}"\nmin_relative_improvement = -0.05\n\n'
        f'[gates.regression]\ndata = "{_head(tmp_path, "general", 30)}"\nitems = 30\nmax_items = 30\n'
        "max_new_tokens = 24\n"
    )
    v1 = str(adapters["v1"])
    hf = _by_name(run(_config(tmp_path / "hf", adapters["cand"], gates, cache, reference=v1)))
    cfg = _config(tmp_path / "srv", adapters["cand"], gates, cache, url=vllm.url, reference=v1, served_reference="v1")
    served = run(cfg)
    got = _by_name(served)
    assert {n: g.verdict for n, g in got.items()} == {n: g.verdict for n, g in hf.items()}
    assert all(g.verdict != "error" for g in got.values()), [g.explanation for g in got.values()]
    for ours, theirs in ((hf["perplexity"].baseline, got["perplexity"].baseline),
                         (hf["perplexity"].candidate, got["perplexity"].candidate)):  # fmt: skip
        assert theirs == pytest.approx(ours, rel=0.005), (ours, theirs)
    rts = served.report.manifest["runtimes"]
    assert rts["base"]["served_as"] == "v1" and rts["candidate"]["served_as"] == "cand"
    wrong = _config(tmp_path / "wrong", adapters["cand"], gates, cache, url=vllm.url, reference=v1,
                    served_reference="v0")  # fmt: skip
    capsys.readouterr()
    assert main(["gate", "--config", str(wrong), "--out", str(tmp_path / "wrong" / "out")]) == 2
    err = " ".join("".join(capsys.readouterr()).split())
    assert "does not serve 'v0'" in err and "served_reference" in err
    assert not (tmp_path / "wrong" / "out").exists()
