"""Broken and hostile inputs through the real CLI (issue 25): data files that are not UTF-8, empty, or hold one
enormous row; `builtin:` names that try to leave the shipped suites; `harness report` on a file that is not a
report or an --out that cannot be written. Each is exit 2 naming the file (and line), with a fix, before any model
loads, and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.data import _BUILTIN_DIR, MAX_ROW_BYTES, builtin_names, load_dataset
from harness.core.errors import HarnessError
from reports import Report, render_json
from tests.helpers import TEXT_ROWS, write_config, write_jsonl

GOOD_ROW = b'{"text": "The payments API returned errors after the deploy."}\n'


def _config(tmp_path: Path, base, adapter: Path, data: str | Path) -> Path:
    return write_config(
        tmp_path / "release.toml", base=str(base.dir), adapter=adapter, data=data, cache_dir=tmp_path / "cache"
    )


def _run(argv: list[str], capfd) -> tuple[int, str]:
    code = main(argv)
    cap = capfd.readouterr()
    return code, cap.out + cap.err


def _commands(tmp_path: Path, base, adapter: Path, data: str | Path) -> dict[str, list[str]]:
    """`harness gate`, `plan` and `data audit` on `data`."""
    cfg = str(_config(tmp_path, base, adapter, data))
    return {
        "gate": ["gate", "--config", cfg, "--out", str(tmp_path / "out")],
        "plan": ["plan", "--config", cfg],
        "audit": ["data", "audit", str(data), "--tokenizer", str(base.dir), "--json", str(tmp_path / "audit.json")],
    }


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    assert not (tmp_path / "audit.json").exists()


# ------------------------------------------------------------------ 1. not UTF-8


@pytest.mark.parametrize(
    ("name", "content", "line", "says"),
    [
        ("binary.jsonl", b"\xff\xfe\x00garbage\n", 1, "UTF-16"),
        ("latin1.jsonl", GOOD_ROW + '{"text": "café au lait"}\n'.encode("latin-1"), 2, "byte 0xe9"),
        ("latin1.txt", b"first document\n\n" + "second: café\n".encode("latin-1"), 3, "byte 0xe9"),
        ("nul.txt", b"some\x00binary\n", 1, "NUL byte"),
    ],
)
def test_a_data_file_that_is_not_utf8_names_file_and_line(
    tmp_path, tiny_base, tiny_zero_adapter, capfd, name, content, line, says
):
    data = tmp_path / name
    data.write_bytes(content)
    for command, argv in _commands(tmp_path, tiny_base, tiny_zero_adapter, data).items():
        code, text = _run(argv, capfd)
        assert code == 2, (command, text)
        assert f"{data}:{line}:" in text and says in text and "fix: save the file as UTF-8" in text, (command, text)
        assert "Traceback" not in text
        _nothing_written(tmp_path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, tiny_base, capfd):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + GOOD_ROW + b'{"text": "Latency rose during the sale."}\n')
    txt = tmp_path / "bom.txt"
    txt.write_bytes(b"\xef\xbb\xbffirst document\n\nsecond document\n")
    assert load_dataset(jsonl).records[0].text == "The payments API returned errors after the deploy."
    assert [r.text for r in load_dataset(txt).records] == ["first document", "second document"]
    code, text = _run(["data", "audit", str(jsonl), "--tokenizer", str(tiny_base.dir)], capfd)
    assert code == 0 and "2 rows" in text, text


# ------------------------------------------------------------------ 2. an empty .txt file


def test_an_empty_txt_file_gets_a_fix_for_text_not_json(tmp_path, tiny_base, tiny_zero_adapter, capfd):
    data = tmp_path / "empty.txt"
    data.write_text("\n\n  \n")
    for command, argv in _commands(tmp_path, tiny_base, tiny_zero_adapter, data).items():
        code, text = _run(argv, capfd)
        assert code == 2 and str(data) in text and "has no records" in text, (command, text)
        fix = text[text.index("fix:") :]
        assert "blank line" in fix and "document" in fix and "JSON" not in fix, (command, fix)
        _nothing_written(tmp_path)


# ------------------------------------------------------------------ 3. one enormous row


@pytest.mark.parametrize("name", ["huge.jsonl", "huge-line.txt", "huge-paragraph.txt"])
def test_a_row_over_1mb_is_refused_without_echoing_it(tmp_path, tiny_base, tiny_zero_adapter, capfd, name):
    data = tmp_path / name
    if name.endswith(".jsonl"):
        data.write_bytes(GOOD_ROW + b'{"text": "' + b"word " * 2_000_000 + b'"}\n')  # 10 MB on line 2
    elif name == "huge-line.txt":
        data.write_bytes(b"a short document\n\n" + b"word " * 2_000_000 + b"\n")  # line 3
    else:  # short lines, no blank line between them: one 1.2 MB document starting at line 3
        data.write_bytes(b"a short document\n\n" + b"a line of words in a paragraph\n" * 40_000)
    line = 2 if name.endswith(".jsonl") else 3
    for command, argv in _commands(tmp_path, tiny_base, tiny_zero_adapter, data).items():
        code, text = _run(argv, capfd)
        assert code == 2, (command, text[:500])
        assert f"{data}:{line}:" in text and "bytes long" in text and "1 MB" in text, (command, text)
        assert len(text) < 1000 and "word word word" not in text, (command, text[:500])
        _nothing_written(tmp_path)


def test_the_row_limit_is_exact_and_line_ends_do_not_count(tmp_path):
    def row(n: int) -> bytes:  # a JSONL row of exactly n bytes
        return b'{"text": "' + b"x" * (n - 12) + b'"}'

    p = tmp_path / "edge.jsonl"
    p.write_bytes(row(MAX_ROW_BYTES) + b"\r\n" + row(20) + b"\n")
    assert [r.line for r in load_dataset(p).records] == [1, 2]
    p.write_bytes(row(20) + b"\n" + row(MAX_ROW_BYTES + 1) + b"\n")
    with pytest.raises(HarnessError, match=rf"edge.jsonl:2: line 2 is {MAX_ROW_BYTES + 1:,} bytes long"):
        load_dataset(p)


def test_error_messages_quote_at_most_80_characters_of_a_row(tmp_path, tiny_base, capfd):
    keys = tmp_path / "keys.jsonl"
    keys.write_text("{" + ", ".join(f'"field_{i}": 1' for i in range(5000)) + "}\n")
    dup_id = "x" * 100_000
    dups = write_jsonl(tmp_path / "dups.jsonl", [{"id": dup_id, "text": "a"}, {"id": dup_id, "text": "b"}])
    for data, says in ((keys, "row has none of the fields"), (dups, "duplicate id")):
        code, text = _run(["data", "audit", str(data), "--tokenizer", str(tiny_base.dir)], capfd)
        assert code == 2 and says in text and len(text) < 600, text[:600]


# ------------------------------------------------------------------ 4. builtin: names stay inside the shipped suites


def test_builtin_names_cannot_leave_the_shipped_folder(tmp_path, tiny_base, tiny_zero_adapter, capfd):
    outside = write_jsonl(tmp_path / "elsewhere" / "eval.jsonl", TEXT_ROWS)  # a readable file outside the suites
    escape = "builtin:" + os.path.relpath(outside.with_suffix(""), _BUILTIN_DIR)
    assert ".." in escape
    for spec in (escape, "builtin:../data/general", "builtin:general/../general", "builtin:nope"):
        for command, argv in _commands(tmp_path, tiny_base, tiny_zero_adapter, spec).items():
            code, text = _run(argv, capfd)
            assert code == 2 and f"{spec}: no built-in data set named" in text, (command, spec, text)
            assert all(f"builtin:{n}" in text for n in builtin_names()), (command, text)
            assert ("a built-in name is not a path" in text) == (spec != "builtin:nope"), (command, text)
            _nothing_written(tmp_path)
    assert load_dataset("builtin:general_text").name == "builtin:general_text"  # the shipped names still work


# ------------------------------------------------------------------ 5. harness report


@pytest.fixture()
def report_json(tmp_path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(render_json(Report(verdict="pass", gates=(), candidate={}, manifest={}, created_at="")))
    return path


def test_report_refuses_an_out_it_cannot_write_before_writing_anything(tmp_path, report_json, capfd, monkeypatch):
    missing = tmp_path / "missing_dir"
    code, text = _run(["report", str(report_json), "--out", str(missing / "r.md")], capfd)
    assert code == 2 and f"the folder '{missing}' does not exist" in text and "fix: create it first" in text, text
    assert not missing.exists()

    code, text = _run(["report", str(report_json), "--out", str(tmp_path), "--overwrite"], capfd)
    assert code == 2 and "--out names a directory" in text and "fix:" in text, text

    (tmp_path / "a_file").write_text("keep me")
    code, text = _run(["report", str(report_json), "--out", str(tmp_path / "a_file" / "r.md")], capfd)
    assert code == 2 and "is a file, not a folder" in text and "fix:" in text, text
    assert (tmp_path / "a_file").read_text() == "keep me"

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))  # root ignores modes
    code, text = _run(["report", str(report_json), "--out", str(locked / "r.md")], capfd)
    assert code == 2 and f"'{locked}' is not writable" in text and "fix:" in text, text
    assert list(locked.iterdir()) == []
    monkeypatch.undo()

    assert main(["report", str(report_json), "--out", str(tmp_path / "r.md")]) == 0  # a writable --out still works
    assert (tmp_path / "r.md").read_text().startswith("# Release report")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[1]\n", "the file holds an array"),
        (b'"report"', "the file holds a string"),
        (b"{}", "it has no 'verdict'"),
        (b'{"verdict": "pass", "gates": [1]}', "not a harness report"),
        (b'{"verdict": "pass", "gates": [], "manifest": []}', "not a harness report"),
        (b'{"verdict": "pass", "gates": [', "cut short"),
        (b"", "the report is empty"),
        (b"not json at all", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
        ('{"verdict": "café"}'.encode("latin-1"), "not UTF-8"),
    ],
)
def test_report_on_a_file_that_is_not_a_report(tmp_path, capfd, content, says):
    src = tmp_path / "report.json"
    src.write_bytes(content)
    out = tmp_path / "r.md"
    code, text = _run(["report", str(src), "--out", str(out)], capfd)
    assert code == 2 and str(src) in text and says in text and "\n  fix: " in text, text
    assert "Traceback" not in text and not out.exists()
