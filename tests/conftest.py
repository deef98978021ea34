from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `make test` runs two workers (pytest-xdist) on two cores: one torch thread each, else four threads fight for two
# cores. Set before torch is imported (and for the processes the tests start); a run without workers is untouched.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)

from tests.helpers import TEXT_ROWS, build_tiny_llama, make_adapter, write_jsonl


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


# Tests that share an expensive fixture run on one worker (`--dist loadgroup`), so it is made once: the vLLM server
# (a session fixture: one per worker that asks), the release artifacts of test_shipping (module fixtures), and the
# forgetting fine-tune of seed 0 (trained once, read by two tests of test_verdicts).
def _group(item: pytest.Item) -> str | None:
    module = item.module.__name__.rsplit(".", 1)[-1]
    if "vllm" in item.fixturenames:
        return "vllm-server"
    if module == "test_shipping":
        return "shipping"
    if module == "test_verdicts" and "forgetting" in item.fixturenames:
        seed = getattr(item, "callspec", None) and item.callspec.params.get("seed")
        return "forgetting-0" if seed in (None, 0) else None
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
