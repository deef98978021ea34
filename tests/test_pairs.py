"""Preference pairs (`harness.core.pairs`): every row form TRL's preference datasets take parses to the same pair;
every bad row is refused naming its file and line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.pairs import PairSet, load_pairs
from tests.helpers import write_jsonl

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Capital of France?"}
ANSWER = {"role": "assistant", "content": "a"}


def _one(tmp_path: Path, row: dict) -> PairSet:
    return load_pairs(write_jsonl(tmp_path / "pairs.jsonl", [row]))


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": [USER], "chosen": "Paris.", "rejected": "Lyon."},
        {"messages": [USER], "chosen": "Paris.", "rejected": "Lyon."},
        {  # TRL conversational, explicit prompt
            "prompt": [USER],
            "chosen": [{"role": "assistant", "content": "Paris."}],
            "rejected": [{"role": "assistant", "content": "Lyon."}],
        },
        {  # TRL conversational, implicit prompt
            "chosen": [USER, {"role": "assistant", "content": "Paris."}],
            "rejected": [USER, {"role": "assistant", "content": "Lyon."}],
        },
    ],
    ids=["string-prompt", "message-prompt", "messages", "explicit-conversational", "implicit-conversational"],
)
def test_every_form_parses_to_the_same_pair(tmp_path, row):
    ps = _one(tmp_path, {**row, "category": "geo"})
    (p,) = ps.pairs
    assert len(ps) == 1 and ps.name == "pairs.jsonl" and len(ps.sha256) == 64 and ps.needs_chat_template
    assert p.prompt == (USER,) and (p.chosen, p.rejected) == ("Paris.", "Lyon.")
    assert p.id == "line-1" and p.line == 1 and p.meta == {"category": "geo"}


def test_implicit_prompt_keeps_the_shared_turns_and_ids(tmp_path):
    convo = [SYSTEM, USER, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]
    rows = [
        {
            "id": "it",
            "chosen": [*convo, {"role": "assistant", "content": "Rome."}],
            "rejected": [*convo, {"role": "assistant", "content": "Milan."}],
        },
        {"id": "fr", "prompt": [SYSTEM, USER], "chosen": "Paris.", "rejected": "Nice."},
    ]
    ps = load_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    assert [p.id for p in ps.pairs] == ["it", "fr"] and [p.line for p in ps.pairs] == [1, 2]
    assert ps.pairs[0].prompt == tuple(convo) and ps.pairs[0].chosen == "Rome."
    assert ps.pairs[1].prompt == (SYSTEM, USER)


def test_blank_lines_are_skipped_and_builtin_names_resolve(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n" + json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n\n")
    assert load_pairs(path).pairs[0].line == 2
    with pytest.raises(HarnessError, match="no built-in data set"):
        load_pairs("builtin:no_such_pairs")


BAD = [
    ({"prompt": "q", "chosen": "a"}, "no 'rejected' field"),
    ({"prompt": "q", "rejected": "b"}, "no 'chosen' field"),
    ({"chosen": "a", "rejected": "b"}, 'no "prompt" field'),
    ({"prompt": "q", "chosen": 3, "rejected": "b"}, '"chosen" must be a string'),
    ({"prompt": "q", "chosen": "a", "rejected": "  "}, '"rejected" is empty'),
    ({"prompt": "q", "chosen": " same ", "rejected": "same"}, "nothing to prefer"),
    ({"prompt": "", "chosen": "a", "rejected": "b"}, '"prompt" is empty'),
    ({"prompt": [USER, {"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}, "end with a user turn"),
    ({"prompt": "q", "messages": [USER], "chosen": "a", "rejected": "b"}, 'both "prompt" and "messages"'),
    ({"prompt": "q", "chosen": [USER, ANSWER], "rejected": "b"}, "one assistant"),
    ({"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}, "one assistant message"),
    ({"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}, '"prompt"[0] must be an object'),
    ({"chosen": [USER, ANSWER], "rejected": [USER]}, "differs only in its last message"),
    ({"chosen": [USER, ANSWER], "rejected": [USER, ANSWER]}, "same conversation"),
    (["prompt", "chosen"], "expected a JSON object"),
]


@pytest.mark.parametrize(("row", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_row_names_its_line_and_the_fix(tmp_path, row, message):
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [good, good | {"id": "2"}, row])
    with pytest.raises(HarnessError) as e:
        load_pairs(path)
    assert message in e.value.message, e.value.message
    assert e.value.where == f"{path}:3" and e.value.fix


def test_file_level_errors_name_the_config_key(tmp_path):
    key = "[gates.preference] data"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for path, message in (
        (empty, "no preference pairs"),
        (tmp_path / "missing.jsonl", "not found"),
        (tmp_path, "found a directory"),
    ):
        with pytest.raises(HarnessError) as e:
            load_pairs(path, key=key)
        assert message in e.value.message and e.value.where == f"{path} (config key {key})" and e.value.fix
    txt = tmp_path / "pairs.txt"
    txt.write_text("q\n")
    with pytest.raises(HarnessError, match="unsupported file type"):
        load_pairs(txt, key=key)


def test_bad_json_and_duplicate_ids_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": \n')
    with pytest.raises(HarnessError) as e:
        load_pairs(path)
    assert e.value.where == f"{path}:2" and "not valid JSON" in e.value.message
    row = {"id": "x", "prompt": "q", "chosen": "a", "rejected": "b"}
    dup = write_jsonl(tmp_path / "dup.jsonl", [row, row])
    with pytest.raises(HarnessError) as e:
        load_pairs(dup)
    assert "duplicate id 'x'" in e.value.message and e.value.where == f"{dup}:1"


def test_relative_paths_resolve_from_the_config_folder(tmp_path):
    write_jsonl(tmp_path / "data" / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    assert len(load_pairs("data/p.jsonl", tmp_path)) == 1
