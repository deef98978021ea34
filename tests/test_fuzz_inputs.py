"""Fuzzing what users hand the harness: random and mutated release configs, data files, adapters and reports give
exit 2 (bad input, naming the place) or a result, never an internal error (exit 3, a traceback), and a mutated
report is never promoted.

Each test is bounded (HARNESS_FUZZ_EXAMPLES examples, 40 by default) and derandomized, so CI runs the same
examples every time; set HARNESS_FUZZ_EXAMPLES=2000 for a long random hunt (not derandomized then).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.core.data import load_dataset
from harness.core.errors import EXIT_INTERNAL, HarnessError
from harness.core.models import check_adapter
from harness.pipeline import run
from tests.helpers import TEXT_ROWS, write_config, write_jsonl

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="HARNESS_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
OPS = ("flip", "insert", "delete", "truncate", "duplicate", "junk")
SPECIAL = [b"\x00", b"\xff", b'"', b"[", b"]", b"{", b"=", b"\n", b"\xef\xbb\xbf", b"\\u0000", b"1e999"]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, *, within: int | None = None) -> bytes:
    """`seed` with 1 to 4 byte-level edits (flipped bits, inserted or deleted bytes, a cut, a repeated span, a run
    of junk), each at a position before `within` when given (e.g. inside a file's header)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        end = max(1, min(len(data), within or len(data)))
        pos = draw(st.integers(0, end - 1))
        op = draw(st.sampled_from(OPS))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\x00", b"\xff", b'"', b"[", b"]", b"{", b"=", b"\n", b"\xef\xbb\xbf"])
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


def files(seed: bytes, **kw) -> st.SearchStrategy[bytes]:
    """Mutations of a valid file, mostly, and now and then bytes with no relation to it."""
    return st.one_of(mutated(seed, **kw), mutated(seed, **kw), st.binary(max_size=256))


@pytest.fixture(scope="module")
def release(tmp_path_factory, tiny_base, tiny_zero_adapter) -> dict[str, Path]:
    """A valid release on the tiny model: its config, its data, and the report of one real gating."""
    root = tmp_path_factory.mktemp("fuzz")
    data = write_jsonl(root / "eval.jsonl", TEXT_ROWS)
    adapter = root / "adapter"
    shutil.copytree(tiny_zero_adapter, adapter)
    cfg = write_config(
        root / "release.toml",
        base=str(tiny_base.dir),
        adapter=adapter,
        data=data,
        cache_dir=root / "cache",
        min_relative_improvement=-0.5,
    )
    report = run(cfg, root / "out").files["json"]
    return {"config": cfg, "data": data, "adapter": adapter, "report": report}


def in_scratch(name: str, content: bytes) -> Path:
    d = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (d / name).write_bytes(content)
    return d / name


@FUZZ
@given(data=st.data())
def test_mutated_release_configs_are_bad_input_or_a_plan(release, data, capsys):
    text = data.draw(files(release["config"].read_bytes()), label="release.toml")
    cfg = in_scratch("release.toml", text)
    try:
        rc = main(["plan", "--config", str(cfg)])
        assert rc in (0, 2), capsys.readouterr().err[-2000:]
    finally:
        shutil.rmtree(cfg.parent)


@FUZZ
@given(data=st.data())
def test_mutated_data_files_load_or_are_refused_with_the_place(release, data):
    seed = release["data"].read_bytes()
    name = data.draw(st.sampled_from(["eval.jsonl", "eval.txt"]), label="name")
    path = in_scratch(name, data.draw(files(seed), label=name))
    try:
        load_dataset(str(path), path.parent, key="[gates.perplexity] data")
    except HarnessError as e:
        assert str(path) in str(e)  # the error names the file
    finally:
        shutil.rmtree(path.parent)


@FUZZ
@given(data=st.data())
def test_mutated_data_files_in_the_audit_are_bad_input_or_an_audit(release, tiny_base, data, capsys):
    path = in_scratch("train.jsonl", data.draw(files(release["data"].read_bytes()), label="train.jsonl"))
    try:
        rc = main(["data", "audit", str(path), "--tokenizer", str(tiny_base.dir)])
        assert rc in (0, 1, 2), capsys.readouterr().err[-2000:]
    finally:
        shutil.rmtree(path.parent)


def _header_end(weights: Path) -> int:
    raw = weights.read_bytes()
    return 8 + int.from_bytes(raw[:8], "little")


@FUZZ
@given(data=st.data())
def test_mutated_adapters_are_accepted_or_refused_before_loading(release, tiny_base, data):
    src = release["adapter"]
    part = data.draw(st.sampled_from(["adapter_config.json", "adapter_model.safetensors"]), label="file")
    seed = (src / part).read_bytes()
    within = _header_end(src / part) + 16 if part.endswith(".safetensors") else None
    d = Path(tempfile.mkdtemp(prefix="fuzz-")) / "adapter"
    shutil.copytree(src, d)
    (d / part).write_bytes(data.draw(files(seed, within=within), label=part))
    try:
        check_adapter(d, tiny_base)
    except HarnessError as e:
        assert str(d) in str(e)  # the error names the adapter's file
    finally:
        shutil.rmtree(d.parent)


@FUZZ
@given(data=st.data())
def test_mutated_reports_render_or_are_bad_input_and_never_promote(release, data, capsys):
    text = data.draw(files(release["report"].read_bytes()), label="report.json")
    report = in_scratch("report.json", text)
    reg = report.parent / "registry"
    try:
        assert main(["report", str(report)]) in (0, 2), capsys.readouterr().err[-2000:]
        rc = main(["promote", "--report", str(report), "--to", str(reg)])
        assert rc != EXIT_INTERNAL, capsys.readouterr().err[-2000:]
        if not _same_json(text, release["report"].read_bytes()):  # white space may change; content may not
            assert rc in (1, 2), "a mutated report was promoted"
            assert not reg.exists()
    finally:
        shutil.rmtree(report.parent)


def _same_json(a: bytes, b: bytes) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


def test_the_unmutated_seeds_pass(release, tiny_base, capsys):
    """The fuzzers start from files that work: a mutation that fails is the mutation's doing."""
    assert main(["plan", "--config", str(release["config"])]) == 0
    assert len(load_dataset(str(release["data"]), release["data"].parent, key="data")) == len(TEXT_ROWS)
    check_adapter(release["adapter"], tiny_base)
    assert main(["report", str(release["report"])]) == 0
    assert json.loads(release["report"].read_text())["verdict"] == "pass"
