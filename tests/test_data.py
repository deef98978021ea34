import json

import pytest

from fine_tune.demo.triage import demo_splits, write_jsonl
from harness.core.data import builtin_names, load_dataset
from harness.core.errors import HarnessError


def test_rows_of_every_form(tmp_path):
    p = tmp_path / "d.jsonl"
    rows = [
        {"id": "a", "text": "plain text"},
        {"id": "b", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]},
        {"prompt": "q", "completion": "a"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    ds = load_dataset(p)
    assert [r.id for r in ds.records] == ["a", "b", "line-3", "line-4"]
    assert ds.records[0].text == "plain text"
    assert ds.records[3].messages == ({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
    assert len(ds.sha256) == 64


def test_malformed_line_names_file_and_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "broken"\n')
    with pytest.raises(HarnessError) as e:
        load_dataset(p)
    assert f"{p}:2" in str(e.value) and "not valid JSON" in str(e.value) and "fix:" in str(e.value)


def test_missing_fields_named(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(
        HarnessError,
        match=r"d.jsonl:1: row has none of the fields text, messages, prompt/completion \(it has: question, answer\)",
    ):
        load_dataset(p)
    p.write_text('{"prompt": "q"}\n')
    with pytest.raises(HarnessError, match='has "prompt" but no "completion"'):
        load_dataset(p)


def test_empty_missing_and_duplicate(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(HarnessError, match="has no records"):
        load_dataset(p)
    with pytest.raises(HarnessError, match="data file not found"):
        load_dataset(tmp_path / "nope.jsonl", key="[gates.perplexity] data")
    p.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n')
    with pytest.raises(HarnessError, match="dup.*x"):
        load_dataset(p)


def test_txt_documents_split_on_blank_lines(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("first doc\nstill first\n\nsecond doc\n")
    ds = load_dataset(p)
    assert [r.text for r in ds.records] == ["first doc\nstill first", "second doc"]


def test_builtin_triage_eval_is_the_generators_eval_split(tmp_path):
    assert "triage_eval" in builtin_names()
    shipped = load_dataset("builtin:triage_eval")
    regenerated = write_jsonl(demo_splits()["eval"], tmp_path / "eval.jsonl")
    assert shipped.path.read_bytes() == regenerated.read_bytes()
    with pytest.raises(HarnessError, match="no built-in data set named 'nope'"):
        load_dataset("builtin:nope")
