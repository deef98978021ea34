from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TEXT_ROWS, build_tiny_llama, make_adapter, write_jsonl


@pytest.fixture(scope="session")
def embedded_base():
    """The real SmolLM2-135M-Instruct, converted once into the user cache."""
    from harness.core.models import EMBEDDED_ALIAS, resolve_base

    return resolve_base(EMBEDDED_ALIAS)


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One measurement cache for every test on the real model in a run: a measurement (the base's answers on a
    suite, above all) is made once per run, whichever module asks first. Keys are content hashes, so sharing
    changes no number; tests that count hits and misses keep caches of their own."""
    return tmp_path_factory.mktemp("real-model-cache")


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
