"""lm-evaluation-harness tasks as gate data: parity with lm-eval's own `hf` model, paired decisions per task with
Holm over tasks, the regression gate end to end on local task YAMLs, and the bad inputs (no lm-eval, unknown task,
a task kind the gate cannot decide on). Everything runs offline: the tasks are `examples/lmeval_tasks`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gates.benchmarks import decide_tasks
from gates.stats import holm
from probes.results import TaskItem, TaskRun, TaskSuiteRun

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "examples" / "lmeval_tasks"
NAMES = ("harness_general_mc", "harness_arithmetic_gen")

pytest.importorskip("lm_eval")


def _workdir(tmp_path: Path) -> Path:
    """A config folder with the example tasks in it (their data_files are relative to the config's folder)."""
    shutil.copytree(TASKS, tmp_path / "lmeval_tasks")
    return tmp_path


def _config(path: Path, base: Path, adapter: Path, cache: Path, extra: str = "") -> Path:
    path.write_text(
        f'[model]\nbase = "{base}"\nadapter = "{adapter}"\n\n[run]\ncache_dir = "{cache}"\n\n'
        f'[gates.regression]\ntasks = {json.dumps(list(NAMES))}\ntask_paths = ["lmeval_tasks"]\ntext = ""\n{extra}'
    )
    return path


def _gate(cfg: Path, out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "gate", "--config", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})},
        timeout=900,
    )


def test_accuracies_equal_lm_evals_own_hf_model(tmp_path, tiny_base, monkeypatch):
    """Same tasks, same model: our model class over the hf runtime and lm-eval's HFLM give the same per-document
    scores (multiple choice: the same option chosen; generative: the same answer text) and the same accuracies."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from harness.core.runtime.load import open_dir
    from probes.lmeval import TaskSpec, run_tasks

    work = _workdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rt = open_dir(tiny_base.dir, device="cpu")
    spec = TaskSpec(NAMES, (str(work / "lmeval_tasks"),), num_fewshot=2)
    ours = run_tasks(rt, spec, work, batch_size=8)

    monkeypatch.chdir(work)
    ref = lm_eval.simple_evaluate(
        model=HFLM(pretrained=rt.model, tokenizer=rt.tok, batch_size=8),
        tasks=list(NAMES),
        num_fewshot=2,
        task_manager=TaskManager(include_path=str(work / "lmeval_tasks"), include_defaults=False),
        log_samples=True,
        bootstrap_iters=0,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    for name, metric in (("harness_general_mc", "acc"), ("harness_arithmetic_gen", "exact_match")):
        mine = ours.task(name)
        samples = sorted(ref["samples"][name], key=lambda s: s["doc_id"])
        assert mine.metric == metric and len(mine.items) == len(samples) == (60 if "mc" in name else 40)
        assert [i.score for i in mine.items] == [float(s[metric]) for s in samples]
        flt = samples[0]["filter"]
        assert mine.lm_eval_score == pytest.approx(ref["results"][name][f"{metric},{flt}"], abs=0)
        assert mine.num_fewshot == 2 and "Question:" in mine.items[0].prompt.split("Answer:")[0]
        if name == "harness_arithmetic_gen":  # the same greedy answers, after the same filter
            assert [i.response for i in mine.items] == [str(s["filtered_resps"][0]) for s in samples]
    mc = ours.task("harness_general_mc")
    assert 0.15 < mc.score < 0.6, mc.score  # a tiny model near chance (4 options), not a degenerate 0 or 1


def _run(name: str, scores: list[float], metric: str = "acc") -> TaskRun:
    items = tuple(TaskItem(i, f"q{i}", "a", "a" if s else "b", float(s)) for i, s in enumerate(scores))
    return TaskRun(name, metric, "multiple_choice", 0, "1.0", float(np.mean(scores)), items)


def _suite(*runs: TaskRun) -> TaskSuiteRun:
    return TaskSuiteRun(tuple(runs), "test")


def test_holm_adjusts_as_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.2, 0.001]) == pytest.approx([0.2, 0.002])


def test_task_decisions_on_cases_whose_truth_is_known():
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.6).astype(float)
    same = _suite(_run("t", list(base)))
    d = decide_tasks(same, same, max_drop=0.05)[0]
    assert d.verdict == "pass" and d.lost == d.gained == 0 and d.mcnemar_p == 1.0

    worse = base.copy()
    worse[np.flatnonzero(base == 1)[:80]] = 0  # 80 of 400 right answers lost: a 20-point drop
    d = decide_tasks(same, _suite(_run("t", list(worse))), max_drop=0.05)[0]
    assert d.verdict == "fail" and d.lost == 80 and d.gained == 0 and d.mcnemar_p < 1e-20
    assert d.ci.upper < -0.05 and d.delta == pytest.approx(-0.2)

    small_b = _suite(_run("t", [1.0] * 20 + [0.0] * 10))
    small_c = _suite(_run("t", [1.0] * 18 + [0.0] * 12))  # 2 of 30 lost: cannot tell 5 points apart
    d = decide_tasks(small_b, small_c, max_drop=0.05)[0]
    assert d.verdict == "inconclusive" and d.more_items and d.more_items > 30


def test_holm_makes_a_borderline_task_undecided_among_several():
    """Alone, a task clears the tolerance; beside two others as borderline, each must clear it at a stricter level
    (an identical task beside it would not cost it anything: Holm spends the level the clear ones leave)."""
    b = [1.0] * 150 + [0.0] * 50
    c = list(b)
    for j in range(0, 16):  # 16 lost, 10 gained: -3 points, close to a 10-point tolerance at n = 200
        c[j] = 0.0
    for j in range(150, 160):
        c[j] = 1.0
    alone = decide_tasks(_suite(_run("a", b)), _suite(_run("a", c)), max_drop=0.08, resamples=4000)[0]
    pairs = [(_run(n, b), _run(n, c)) for n in ("a", "b", "c")]
    many = decide_tasks(_suite(*(p[0] for p in pairs)), _suite(*(p[1] for p in pairs)), max_drop=0.08, resamples=4000)
    a = next(d for d in many if d.name == "a")
    assert alone.verdict == "pass" and a.verdict == "inconclusive", (alone.p_drop, a.p_drop)
    assert a.p_drop == pytest.approx(3 * alone.p_drop, rel=1e-9)  # the first Holm step multiplies by 3
    assert sorted(d.ci.level for d in many) == pytest.approx([0.95, 1 - 0.05 / 2, 1 - 0.05 / 3])
    assert alone.ci.level == pytest.approx(0.95)
    clear = decide_tasks(
        _suite(_run("a", b), _run("b", b), _run("c", b)),
        _suite(_run("a", c), _run("b", b), _run("c", b)),
        max_drop=0.08,
        resamples=4000,
    )
    assert next(d for d in clear if d.name == "a").verdict == "pass"


def test_base_and_candidate_on_different_documents_is_an_error():
    b = _suite(_run("t", [1.0, 0.0, 1.0]))
    c = _suite(TaskRun("t", "acc", "multiple_choice", 0, "1.0", 0.5, b.tasks[0].items[:2]))
    with pytest.raises(ValueError, match="different documents"):
        decide_tasks(b, c, max_drop=0.05)


def test_the_regression_gate_decides_on_local_lm_eval_tasks(
    tmp_path, tiny_base, tiny_zero_adapter, tiny_damage_adapter
):
    """End to end through `harness gate`: an identical adapter passes with every document paired; a damaged one is
    blocked and its report shows the per-task table, McNemar, Holm and the forgotten documents; a re-run is
    served from the cache."""
    work = _workdir(tmp_path)
    cache = tmp_path / "cache"
    same = _gate(_config(work / "same.toml", tiny_base.dir, tiny_zero_adapter, cache), tmp_path / "same")
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-3000:]
    rep = json.loads((tmp_path / "same" / "report.json").read_text())
    g = rep["gates"][0]
    assert g["verdict"] == "pass"
    tasks = {t["name"]: t for t in g["details"]["lm_eval"]["tasks"]}
    assert set(tasks) == set(NAMES)
    assert tasks["harness_general_mc"]["items"] == 60 and tasks["harness_arithmetic_gen"]["items"] == 40
    assert all(t["lost"] == t["gained"] == 0 and t["delta"] == 0 for t in tasks.values())
    assert "Holm over 2 tasks" in g["details"]["lm_eval"]["correction"]

    bad = _gate(_config(work / "bad.toml", tiny_base.dir, tiny_damage_adapter, cache), tmp_path / "bad")
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    g = json.loads((tmp_path / "bad" / "report.json").read_text())["gates"][0]
    mc = next(t for t in g["details"]["lm_eval"]["tasks"] if t["name"] == "harness_general_mc")
    assert g["verdict"] in ("fail", "inconclusive") and mc["lost"] > mc["gained"]
    md = (tmp_path / "bad" / "report.md").read_text()
    assert "lm-eval tasks (paired on the same documents; Holm over 2 tasks)" in md
    assert "| `harness_general_mc` | acc | 60 |" in md and "McNemar" in md and "lost / gained" in md
    assert "Worst examples" in md and "`harness_general_mc:" in md and "acc 1 -> 0" in md

    again = _gate(_config(work / "same.toml", tiny_base.dir, tiny_zero_adapter, cache), tmp_path / "again")
    assert again.returncode == 0
    assert "| cache | 2 hits, 0 misses |" in (tmp_path / "again" / "report.md").read_text()


def test_tasks_without_lm_eval_installed_exit_2_with_the_install_command(tmp_path, tiny_base, tiny_zero_adapter):
    work = _workdir(tmp_path)
    cfg = _config(work / "r.toml", tiny_base.dir, tiny_zero_adapter, tmp_path / "cache")
    code = (
        "import sys; sys.modules['lm_eval'] = None\n"  # as if lm-eval were not installed
        "from harness.cli import main\n"
        f"sys.exit(main(['gate', '--config', {str(cfg)!r}, '--out', {str(tmp_path / 'out')!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "[gates.regression] tasks" in out and "pip install 'release-gate-harness[lmeval]'" in out
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_task_the_gate_cannot_decide_on_is_refused_before_any_model_loads(tmp_path, tiny_base, tiny_zero_adapter):
    work = _workdir(tmp_path)
    (work / "lmeval_tasks" / "lambada_like.yaml").write_text(
        "task: harness_lambada_like\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        "    test: lmeval_tasks/arithmetic_gen.jsonl\noutput_type: loglikelihood\ntest_split: test\n"
        'doc_to_text: "{{question}}"\ndoc_to_target: " {{answer}}"\n'
    )
    cfg = _config(work / "r.toml", tiny_base.dir, tiny_zero_adapter, tmp_path / "cache")
    cfg.write_text(cfg.read_text().replace('"harness_arithmetic_gen"', '"harness_lambada_like"'))
    r = _gate(cfg, tmp_path / "out")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "harness_lambada_like" in r.stderr and "output_type 'loglikelihood'" in r.stderr
    assert "Loading base model" not in r.stdout + r.stderr


def test_an_unknown_task_exits_2_with_the_closest_name(tmp_path, tiny_base, tiny_zero_adapter):
    work = _workdir(tmp_path)
    cfg = _config(work / "r.toml", tiny_base.dir, tiny_zero_adapter, tmp_path / "cache")
    cfg.write_text(cfg.read_text().replace('"harness_general_mc"', '"harness_general_mcq"'))
    r = _gate(cfg, tmp_path / "out")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "unknown lm-eval task 'harness_general_mcq' (did you mean 'harness_general_mc'?)" in r.stderr
    assert "[gates.regression] tasks" in r.stderr


def test_pass_at_k_on_a_generative_lm_eval_task(tmp_path, tiny_base, tiny_zero_adapter):
    """pass_at_k reads a generate_until task's documents as probes answered once each, the task's metric the check:
    an identical candidate does not improve (fail at margin 0, every answer the same), and a multiple-choice
    task is refused as an error that names it."""
    work = _workdir(tmp_path)
    cfg = work / "p.toml"
    gate = '[gates.pass_at_k]\ntask = "harness_arithmetic_gen"\ntask_paths = ["lmeval_tasks"]\nlimit = 12\n'
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\nadapter = "{tiny_zero_adapter}"\n\n[run]\ncache_dir = "{tmp_path}/c"\n\n'
        + gate
    )
    r = _gate(cfg, tmp_path / "out")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    g = json.loads((tmp_path / "out" / "report.json").read_text())["gates"][0]
    assert g["verdict"] == "fail" and g["details"]["items"] == 12 and g["details"]["n"] == 1
    assert g["explanation"].startswith("lm-eval task harness_arithmetic_gen: pass@1")
    assert g["details"]["mcnemar"]["lost"] == g["details"]["mcnemar"]["gained"] == 0

    cfg.write_text(cfg.read_text().replace("harness_arithmetic_gen", "harness_general_mc"))
    r = _gate(cfg, tmp_path / "out-mc")
    g = json.loads((tmp_path / "out-mc" / "report.json").read_text())["gates"][0]
    assert r.returncode == 1 and g["verdict"] == "error"
    assert "pass_at_k needs a generate_until task" in g["explanation"]
