import json

from fine_tune.demo.triage import CATEGORIES, IMPACTS, SEVERITIES, SYMPTOMS, TEMPLATES, demo_splits, write_demo_data


def test_reproducible_byte_for_byte(tmp_path):
    a = write_demo_data(tmp_path / "a")
    b = write_demo_data(tmp_path / "b")
    for name in ("train", "valid", "eval"):
        assert a[name].read_bytes() == b[name].read_bytes()


def test_splits_are_disjoint_and_diverse():
    s = demo_splits()
    assert (len(s["train"]), len(s["valid"]), len(s["eval"])) == (240, 40, 40)
    train = set().union(*(it.pairs for it in s["train"]))
    assert not any(it.pairs & train for it in s["eval"])
    assert not any(it.pairs & train for it in s["valid"])
    assert len(TEMPLATES) >= 5 and len({it.template for it in s["train"]}) == len(TEMPLATES)
    assert {it.severity for it in s["train"]} == set(SEVERITIES)
    assert {it.category for it in s["train"]} == set(CATEGORIES)


def test_labels_follow_from_the_text():
    for it in demo_splits()["eval"]:
        assert any(p in it.report for p in SYMPTOMS[it.category])
        assert any(p in it.report for p in IMPACTS[it.severity])
        assert json.loads(it.answer) == {"severity": it.severity, "category": it.category}
        assert it.report in it.prompt
