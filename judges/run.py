"""The `judge` measurement: base and candidate answers (measured like probes) judged pairwise and by rubric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.cache import MeasurementCache
from harness.core.console import progress
from harness.core.kinds import MeasureCall, MeasureRequest, kind, same_data_as, to_dict
from judges.backends import Backend, HFBackend, OpenAIBackend
from judges.protocol import Judge, JudgeRun, judge_pairs, load_axes
from judges.results import JudgeSpec

_BACKENDS: dict[tuple[JudgeSpec, str], Backend] = {}


def get_backend(spec: JudgeSpec, base_dir: Path | None = None) -> Backend:
    """A client for an endpoint (made afresh: it reads the key from the environment each run); a local
    judge model is loaded once per process."""
    if spec.backend == "openai":
        return OpenAIBackend(
            base_url=spec.base_url or "",
            model=spec.model,
            api_key_env=spec.api_key_env,
            timeout=spec.timeout,
            retries=spec.retries,
            concurrency=spec.concurrency,
            logprobs=spec.logprobs,
        )
    key = (spec, str(base_dir))
    if key not in _BACKENDS:
        _BACKENDS[key] = HFBackend(spec.model, base_dir=base_dir)
    return _BACKENDS[key]


def preflight(spec: JudgeSpec, base_dir: Path | None = None) -> None:
    """Before any model loads: the endpoint answers and serves the model (else exit 2 with the URL)."""
    get_backend(spec, base_dir).check()


def question_text(messages: tuple[dict[str, str], ...]) -> str:
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def run_judge(
    spec: JudgeSpec, suite: Any, base: Any, candidate: Any, cache: MeasurementCache, base_dir: Path | None = None
) -> JudgeRun:
    """Judge each item's first base answer against its first candidate answer."""
    backend = get_backend(spec, base_dir)
    axes = load_axes(list(spec.axes), spec.axes_file) if spec.axes else []
    judge = Judge(
        backend, cache, spec.mode, seed=spec.seed, parse_retries=spec.parse_retries, max_tokens=spec.max_tokens
    )
    items = [
        (item.id, question_text(item.messages), b.outputs[0], c.outputs[0])
        for item, b, c in zip(suite.items[: len(base.items)], base.items, candidate.items, strict=True)
    ]
    with progress() as bar:
        task = bar.add_task(f"judging {len(items)} pairs ({spec.backend}: {spec.model})", total=len(items))
        return judge_pairs(judge, items, axes=axes, on_done=lambda: bar.advance(task))


# -- the `judge` measurement kind ----------------------------------------------------------------------------


def judge_preflight(req: MeasureRequest, base_dir: Path | None) -> None:
    preflight(req.opts["spec"], base_dir)


def judge_identity(req: MeasureRequest, base_dir: Path | None) -> Any:
    return get_backend(req.opts["spec"], base_dir).identity()


@kind(  # base vs candidate answers (the `source` request), judged pairwise
    "judge",
    load=JudgeRun.from_dict,
    dump=to_dict,
    load_data=same_data_as("answers"),  # the prompts the answers were sampled on (probes.sampling.load_prompts)
    preflight=judge_preflight,
    identity=judge_identity,
    code=("judges.protocol", "judges.backends", "judges.run"),
)
def _judge_kind(call: MeasureCall) -> JudgeRun:
    env = call.env
    return run_judge(
        call.options["spec"], call.data, call.inputs["base"], call.inputs["candidate"], env.cache, env.base_dir
    )
