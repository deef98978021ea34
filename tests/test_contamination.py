"""Contamination (exact 13-grams + fuzzy), duplicates, the contamination gate, dataset audit and dedup."""

from __future__ import annotations

import json

import pytest

from fine_tune.demo.triage import write_demo_data
from harness.cli import main
from harness.core.errors import HarnessError
from harness.pipeline import run
from probes.contamination import contamination, duplicates
from probes.overlap import read_text_set
from tests.helpers import TEXT_ROWS, write_jsonl

BUILTINS = [
    "builtin:triage_probes",
    "builtin:triage_eval",
    "builtin:general",
    "builtin:general_text",
    "builtin:safety_harmful",
    "builtin:safety_benign",
    "builtin:judge_general",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("demo"))


def _rows(path):
    return [json.loads(line) for line in open(path)]


def _user(row):
    return row["prompt"][0]["content"]


def repunctuate(text: str) -> str:
    return text.replace(".", " ;").replace(",", "").replace(":", " -").upper()


def swap_words(text: str) -> str:
    """Light paraphrase: two pairs of neighbouring words swapped and one word replaced by a synonym."""
    words = text.split()
    for i in (3, len(words) // 2):
        words[i], words[i + 1] = words[i + 1], words[i]
    out = " ".join(words)
    for a, b in (("affected", "impacted"), ("service", "system"), ("report", "ticket")):
        if a in out:
            return out.replace(a, b, 1)
    return out


def test_no_false_positive_on_the_clean_demo_splits(demo):
    train = read_text_set(str(demo["train"]))
    evals = [read_text_set(str(demo["eval"])), read_text_set(str(demo["valid"]))]
    evals += [read_text_set(s) for s in BUILTINS]
    run_ = contamination(evals, [train])
    assert {e.name: len(e.matches) for e in run_.evals} == {e.name: 0 for e in evals}


@pytest.mark.parametrize("how", ["verbatim", "repunctuated", "word swaps"])
def test_planted_contamination_is_caught(tmp_path, demo, how):
    evals = _rows(demo["eval"])
    planted = {3: None, 17: None, 29: None}
    train = _rows(demo["train"])
    change = {"verbatim": lambda t: t, "repunctuated": repunctuate, "word swaps": swap_words}[how]
    for j in planted:
        row = dict(evals[j], id=f"leak-{j}")
        row["prompt"] = [{"role": "user", "content": change(_user(evals[j]))}]
        train.insert(5 * j, row)
    tpath = write_jsonl(tmp_path / "train.jsonl", train)
    run_ = contamination([read_text_set(str(demo["eval"]))], [read_text_set(str(tpath))])
    (ev,) = run_.evals
    assert {m.eval_id for m in ev.matches} == {evals[j]["id"] for j in planted}  # all caught, nothing else
    for m in ev.matches:
        assert m.train_id == f"leak-{evals.index(next(e for e in evals if e['id'] == m.eval_id))}"


def test_exact_13gram_overlap_in_free_text_reports_the_share(tmp_path):
    docs = _rows(read_text_set("builtin:general_text").path)
    target = docs[4]["text"]
    words = target.split()
    half = " ".join(words[: 2 * len(words) // 3])  # two thirds of a paragraph pasted inside an unrelated document
    train = write_jsonl(tmp_path / "t.jsonl", [{"id": "web-1", "text": f"Unrelated intro text here. {half} And more."}])
    (ev,) = contamination([read_text_set("builtin:general_text")], [read_text_set(str(train))], fuzzy_cutoff=99).evals
    (m,) = ev.matches
    assert m.eval_id == docs[4]["id"] and m.method == "exact" and m.train_id == "web-1"
    n_grams = len(words) - 12
    assert m.score == pytest.approx((len(half.split()) - 12) / n_grams, abs=0.05)  # the share of its 13-grams


def test_duplicates_and_dedup_never_overwrite(tmp_path, demo):
    rows = _rows(demo["train"])[:50]
    rows.insert(10, dict(rows[2]))  # exact copy (same id and text)
    rows.insert(20, dict(rows[4], id="copy", prompt=[{"role": "user", "content": repunctuate(_user(rows[4]))}]))
    src = write_jsonl(tmp_path / "train.jsonl", rows)
    before = src.read_bytes()
    d = duplicates(read_text_set(str(src)))
    assert d.exact_extra == 2  # the verbatim copy, and the re-punctuated one normalises to the same text
    out = tmp_path / "clean.jsonl"
    assert main(["data", "dedup", str(src), str(out)]) == 0
    kept = _rows(out)
    assert len(kept) == len(rows) - len(d.drop_lines) and len(kept) <= 50
    assert src.read_bytes() == before
    assert main(["data", "dedup", str(src), str(out)]) == 2  # an existing output is never overwritten
    assert main(["data", "dedup", str(src), str(src)]) == 2


def test_dedup_of_a_text_file_keeps_its_documents_apart(tmp_path):
    doc, other = "The queue stalled.\nIt was restarted.", "Logins were slow."
    src = tmp_path / "corpus.txt"
    src.write_text(f"{doc}\n\n{other}\n\n{doc}\n")
    out = tmp_path / "clean.txt"
    assert main(["data", "dedup", str(src), str(out)]) == 0
    assert out.read_text() == f"{doc}\n\n{other}\n"
    assert [r.text for r in read_text_set(str(out)).items] == [doc, other]


def test_audit_renders_as_the_trainer_sees_and_flags_cut_answers(tmp_path, capsys):
    rows = [
        {
            "id": f"r{i}",
            "prompt": [{"role": "user", "content": f"Summarise report {i}: " + "the service was slow. " * 3}],
            "completion": [{"role": "assistant", "content": "Slow service. " * (2 if i % 2 else 40)}],
            "task": "summary" if i % 2 else "long",
        }
        for i in range(6)
    ]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    assert main(["data", "audit", str(path), "--max-length", "96", "--json", str(tmp_path / "a.json")]) == 0
    text = capsys.readouterr().out
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["rows"] == 6 and a["tasks"] == {"long": 3, "summary": 3}
    assert a["truncated_by_task"] == {"long": 1.0, "summary": 0.0}
    assert sorted(a["answer_cut"]) == ["r0", "r2", "r4"]
    assert a["template_count"] is not None and a["template_warning"]  # one template: fewer than 5
    assert "<|im_start|>assistant" in a["rendered"][0] and "<|im_start|>assistant" in text
    assert "answers cut by max_length | 3" in text


def _gate_config(tmp_path, tiny_base, adapter, eval_path, train_path, extra=""):
    cfg = tmp_path / "release.toml"
    cfg.write_text(
        f'[model]\nbase = "{tiny_base.dir}"\nadapter = "{adapter}"\n[run]\ncache_dir = "{tmp_path / "cache"}"\n'
        f'[fine_tune]\ntrain = "{train_path}"\n'
        f'[gates.perplexity]\ndata = "{eval_path}"\nmin_relative_improvement = -0.5\n'
        f"[gates.contamination]\n{extra}"
    )
    return cfg


def test_gate_fails_names_the_training_item_and_other_gates_report_without_them(tmp_path, tiny_base, tiny_zero_adapter):
    evals = write_jsonl(tmp_path / "eval.jsonl", TEXT_ROWS)
    leaked = [dict(TEXT_ROWS[1], id="train-leak-a"), dict(TEXT_ROWS[5], id="train-leak-b")]
    other = [
        {"id": f"t{i}", "text": f"Unrelated training text number {i} about gardening and bread."} for i in range(20)
    ]
    train = write_jsonl(tmp_path / "train.jsonl", other[:7] + leaked + other[7:])
    cfg = _gate_config(tmp_path, tiny_base, tiny_zero_adapter, evals, train)
    report = run(cfg, tmp_path / "out").report
    g = {x.name: x for x in report.gates}
    c = g["contamination"]
    assert c.verdict == "fail" and c.candidate == pytest.approx(2 / len(TEXT_ROWS))
    assert {e.id for e in c.evidence} == {"doc-1", "doc-5"}
    assert any("train-leak-a" in e.note for e in c.evidence)
    w = g["perplexity"].details["without_contaminated"]
    # the zero adapter changes nothing: without the leaked items the change is still exactly 0, a pass at -50%
    assert w["removed_items"] == 2 and w["verdict"] == "pass" and g["perplexity"].verdict == "pass"
    assert "Without the 2 contaminated item(s)" in g["perplexity"].explanation
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Dataset: the training data audited" in md and "train.jsonl" in md
    assert main(["gate", "--config", str(cfg), "--out", str(tmp_path / "out2")]) == 1


def test_gate_passes_on_clean_data_and_needs_training_data(tmp_path, tiny_base, tiny_zero_adapter):
    evals = write_jsonl(tmp_path / "eval.jsonl", TEXT_ROWS)
    train = write_jsonl(tmp_path / "train.jsonl", [{"id": "t", "text": "Bread needs flour, water, salt and time."}])
    cfg = _gate_config(tmp_path, tiny_base, tiny_zero_adapter, evals, train)
    (p, c) = run(cfg).report.gates
    assert c.verdict == "pass" and "without_contaminated" not in p.details
    cfg.write_text(cfg.read_text().replace(f'[fine_tune]\ntrain = "{train}"\n', ""))
    with pytest.raises(HarnessError, match="no training data"):
        run(cfg)


def test_txt_documents_have_the_ids_every_other_reader_gives(tmp_path):
    from harness.core.data import load_dataset

    p = tmp_path / "docs.txt"
    p.write_text("first doc\nstill first\n\nsecond doc\n\n\nthird doc\n")
    assert [i.id for i in read_text_set(str(p)).items] == [r.id for r in load_dataset(p).records]
