from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# `make test` runs two workers (pytest-xdist) on two cores: one torch thread each, else four threads fight for two
# cores. Set before torch is imported (and for the processes the tests start); a run without workers is untouched.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)

from tests.helpers import TEXT_ROWS, build_tiny_llama, make_adapter, train_forgetting_adapter, write_jsonl


@pytest.fixture(scope="session")
def embedded_base():
    """The real SmolLM2-135M-Instruct, converted once into the user cache."""
    from harness.core.models import EMBEDDED_ALIAS, resolve_base

    return resolve_base(EMBEDDED_ALIAS)


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One measurement cache for every test on the real model in a run, shared by the workers: a measurement (the
    base's answers on a suite, above all) is made once per run, whichever test asks first (twice at most, when two
    workers ask at the same moment; entries are written atomically). Keys are content hashes, so sharing changes no
    number; tests that count hits and misses keep caches of their own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' base temp folders share a parent: the run's
        shared = tmp_path_factory.getbasetemp().parent / "real-model-cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("real-model-cache")


# Tests that share an expensive fixture run on one worker, so it is made once: test_vllm (its vLLM server is a
# session fixture: one per worker that asks), test_shipping (its release artifacts are module fixtures), and the
# three tests that read the forgetting fine-tune of seed 0 (a session fixture: trained once per run). xdist's own
# `--dist loadgroup` reads the `xdist_group` marks by rewriting `item._nodeid`, which pytest 9.2 no longer reads:
# its groups were silently ignored. So `make test` passes `--dist loadgroup` and this file's scheduler groups by
# node id instead.
FORGETTING_0 = (
    "tests/test_verdicts.py::test_aggressive_narrow_fine_tune_fails_regression[0]",
    "tests/test_verdicts.py::test_v1_against_a_forgetting_v2_fails_regression",
    "tests/test_real_model.py::test_a_short_real_fine_tune_beats_its_base_with_a_ci",
)


def work_unit(nodeid: str) -> str:
    """The unit of work a test is scheduled in: its group, else the test alone."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    if module in ("test_vllm.py", "test_shipping.py"):
        return module
    if nodeid in FORGETTING_0:
        return "forgetting-0"
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        """xdist's load-by-scope scheduler (a unit runs whole on one worker; units with more tests go first),
        with `work_unit` as the scope."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return Groups(config, log)


def pytest_collection_modifyitems(config, items):
    """Slow tests first (a stable sort): long units start early and the many short ones even out the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def triage(tmp_path_factory) -> dict[str, Path]:
    """The demo's triage splits without its policy and replay rows: a narrow task."""
    from fine_tune import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("triage"), policy=False)


@pytest.fixture(scope="session")
def forgetting(tmp_path_factory, embedded_base, triage):
    """The forgetting fine-tune of a seed (`train_forgetting_adapter`), trained once per run on the worker that
    asks (the tests of seed 0 share a work unit); its measurements are cached with it."""
    made: dict[int, Any] = {}

    def get(seed: int) -> Any:
        if seed not in made:
            out = tmp_path_factory.mktemp(f"forgetting-{seed}") / "train"
            made[seed] = train_forgetting_adapter(embedded_base, triage, out, seed)
        return made[seed]

    return get


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, embedded_base):
    texts = [r["text"] for r in TEXT_ROWS]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", embedded_base.dir, pretrain_texts=texts)


@pytest.fixture(scope="session")
def tiny_zero_adapter(tmp_path_factory, tiny_base) -> Path:
    return make_adapter(tiny_base, tmp_path_factory.mktemp("adapters") / "zero", "zero")


@pytest.fixture(scope="session")
def tiny_damage_adapter(tmp_path_factory, tiny_base) -> Path:
    return make_adapter(
        tiny_base,
        tmp_path_factory.mktemp("adapters") / "damage",
        "damage",
        scale=1.0,
        target_modules=("v_proj", "o_proj", "down_proj"),
    )


@pytest.fixture()
def text_data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "data" / "eval.jsonl", TEXT_ROWS)
