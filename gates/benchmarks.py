"""Paired decisions on benchmark tasks (lm-evaluation-harness): per task, base and candidate scored on the same
documents, the change in accuracy with a paired bootstrap interval, McNemar's exact test on the discordant
documents, and a non-inferiority verdict at `max_drop`, with Holm's correction over the tasks so that the chance
of any wrong pass (or any wrong fail) over all tasks stays at 1 - confidence, one-sided each way.

A task passes when its Holm-adjusted p-value for "the drop is at least max_drop" is below alpha / 2, fails when
its adjusted p-value for "the drop is less than max_drop" is, and is inconclusive otherwise. With one task this
is exactly the interval rule of the other gates (pass when the lower bound of the two-sided interval clears the
tolerance, fail when the upper bound does not reach it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gates.registry import MeasureRequest
from gates.stats import Interval, bootstrap_mean, bootstrap_mean_draws, holm, mcnemar_exact, more_items_needed
from probes.results import ProbeOutcome, ProbeRun, TaskRun, TaskSuiteRun


def lmeval_request(
    tasks: list[str],
    task_paths: list[str],
    *,
    limit: int,
    num_fewshot: int,
    seed: int,
    batch_size: int,
    key: str = "[gates.regression] tasks",
) -> MeasureRequest:
    """lm-eval tasks, run once per variant (`data` names them; the task files are keyed by content). `key` is the
    config key that names them, for errors (like `batch_size`, not part of the cache key)."""
    opts = (
        ("key", key),
        ("tasks", tuple(tasks)),
        ("task_paths", tuple(task_paths)),
        ("limit", limit),
        ("num_fewshot", num_fewshot),
        ("seed", seed),
        ("batch_size", batch_size),
    )
    return MeasureRequest("lmeval", "lm-eval: " + ", ".join(tasks), opts)


def as_probe_run(run: TaskSuiteRun, name: str) -> ProbeRun:
    """A generative task's documents as probe items answered once each (the task's metric is the check), for the
    pass_at_k gate's pass@1."""
    t = run.task(name)
    if t.output_type != "generate_until":
        raise ValueError(f"task {name!r} is {t.output_type}: pass_at_k needs a generate_until task (a checked answer)")
    if any(i.score not in (0.0, 1.0) for i in t.items):
        raise ValueError(f"task {name!r}: metric {t.metric!r} is not pass/fail per document; name one as 'task:metric'")
    items = tuple(
        ProbeOutcome(
            id=f"{name}:{i.doc_id}",
            prompt=i.prompt,
            outputs=(i.response,),
            passed=(i.score == 1.0,),
            parsed=(True,),
            details=(f"target {i.target!r}; {t.metric} {i.score:g}",),
        )
        for i in t.items
    )
    return ProbeRun(items)


@dataclass(frozen=True)
class TaskDecision:
    """One task's paired comparison and its verdict (Holm-corrected over the gate's tasks)."""

    name: str
    metric: str
    items: int
    base: float
    candidate: float
    ci: Interval  # of candidate - base, at the level of this task's Holm step
    lost: int  # documents the base got right and the candidate wrong
    gained: int  # the reverse
    mcnemar_p: float | None  # None when the metric is not pass/fail
    p_drop: float  # Holm-adjusted p-value of "the drop is at least max_drop" (small: the task passes)
    p_within: float  # Holm-adjusted p-value of "the drop is less than max_drop" (small: the task fails)
    verdict: str
    more_items: int | None
    worst: tuple[int, ...]  # indexes into the base run's items, the most forgotten first
    lm_eval_base: float
    lm_eval_candidate: float

    @property
    def delta(self) -> float:
        return self.ci.point


def _paired(b: TaskRun, c: TaskRun) -> tuple[np.ndarray, np.ndarray]:
    if [i.doc_id for i in b.items] != [i.doc_id for i in c.items] or [i.target for i in b.items] != [
        i.target for i in c.items
    ]:
        raise ValueError(f"task {b.name!r}: base and candidate were scored on different documents")
    if b.metric != c.metric:
        raise ValueError(f"task {b.name!r}: base scored on {b.metric!r}, candidate on {c.metric!r}")
    return np.array([i.score for i in b.items]), np.array([i.score for i in c.items])


def decide_tasks(
    base: TaskSuiteRun,
    cand: TaskSuiteRun,
    *,
    max_drop: float,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    evidence: int = 5,
) -> list[TaskDecision]:
    """Each task of `base` (the candidate must have the same tasks and documents), decided with Holm over tasks."""
    names = [t.name for t in base.tasks]
    if sorted(names) != sorted(t.name for t in cand.tasks):
        raise ValueError("base and candidate ran different tasks")
    a = (1 - confidence) / 2  # one side of the two-sided level, as the interval rule of every gate
    rows = []
    for name in names:
        b, c = base.task(name), cand.task(name)
        sb, sc = _paired(b, c)
        if len(sb) == 0:
            raise ValueError(f"task {name!r} has no documents")
        diff = sc - sb
        draws = bootstrap_mean_draws(diff, resamples=resamples, seed=seed)
        rows.append((b, c, sb, sc, diff, float((draws < -max_drop).mean()), float((draws >= -max_drop).mean())))
    m = len(rows)
    adj_drop = holm([r[5] for r in rows])
    adj_within = holm([r[6] for r in rows])
    step = {i: k for k, i in enumerate(sorted(range(m), key=lambda i: rows[i][5]))}
    out = []
    for i, (b, c, sb, sc, diff, _, _) in enumerate(rows):
        level = 1 - 2 * a / (m - step[i])  # the two-sided level this task's Holm step tests at
        iv = bootstrap_mean(diff, resamples=resamples, level=level, seed=seed)
        if adj_drop[i] <= a:
            verdict, more = "pass", None
        elif adj_within[i] <= a:
            verdict, more = "fail", None
        else:
            verdict, more = "inconclusive", more_items_needed(iv, -max_drop)
        binary = bool(np.isin(sb, (0.0, 1.0)).all() and np.isin(sc, (0.0, 1.0)).all())
        mc = mcnemar_exact(sb == 1.0, sc == 1.0) if binary else None
        lost = int(((sb - sc) > 0).sum())
        gained = int(((sc - sb) > 0).sum())
        worst = tuple(int(j) for j in np.argsort(diff, kind="stable") if diff[j] < 0)[:evidence]
        out.append(
            TaskDecision(
                name=b.name,
                metric=b.metric,
                items=len(sb),
                base=float(sb.mean()),
                candidate=float(sc.mean()),
                ci=iv,
                lost=lost,
                gained=gained,
                mcnemar_p=mc.p_value if mc else None,
                p_drop=adj_drop[i],
                p_within=adj_within[i],
                verdict=verdict,
                more_items=more,
                worst=worst,
                lm_eval_base=b.lm_eval_score,
                lm_eval_candidate=c.lm_eval_score,
            )
        )
    return out
