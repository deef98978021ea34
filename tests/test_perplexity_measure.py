"""Perplexity measurement against a direct hand computation on a tiny model."""

import math

import pytest
import torch

from harness.core.data import load_dataset
from harness.core.models import load_base_model, load_tokenizer
from probes.perplexity import encode_record, measure_nll, windows
from tests.helpers import write_jsonl


@pytest.fixture(scope="module")
def tiny(tiny_base):
    return load_base_model(tiny_base), load_tokenizer(tiny_base.dir)


def _hand_nll(model, ids: list[int], scored: list[bool], max_length: int) -> float:
    """Sum of -log p(token) over scored tokens; each window one unbatched forward pass."""
    total, start = 0.0, 0
    while start < len(ids) - 1:
        chunk = ids[start : start + max_length]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([chunk])).logits[0].double(), dim=-1)
        for j in range(1, len(chunk)):
            if scored[start + j]:
                total -= logp[j - 1, chunk[j]].item()
        start += max_length - 1
    return total


def test_text_rows_match_hand_computation(tiny, text_data):
    model, tok = tiny
    ds = load_dataset(text_data)
    for max_length in (512, 7):  # one window per document, and many short windows
        m = measure_nll(model, tok, ds, max_length=max_length, batch_size=3)
        for rec, doc in zip(ds.records, m.docs, strict=True):
            enc = encode_record(rec, tok)
            assert enc.ids[0] == tok.bos_token_id and not enc.scored[0] and all(enc.scored[1:])
            expected = _hand_nll(model, enc.ids, enc.scored, max_length)
            assert doc.tokens == len(enc.ids) - 1
            assert math.exp(doc.nll / doc.tokens) == pytest.approx(math.exp(expected / doc.tokens), rel=1e-4)
            assert doc.nll == pytest.approx(expected, abs=1e-3)
            assert doc.bytes == len(rec.text.encode())
        assert m.perplexity == pytest.approx(math.exp(m.total_nll / m.total_tokens))


def test_chat_rows_score_the_answer_only(tiny, tmp_path):
    model, tok = tiny
    rows = [
        {"id": "c1", "prompt": "Classify: the API is down.", "completion": '{"severity": "critical"}'},
        {
            "id": "c2",
            "messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi there!"}],
        },
    ]
    ds = load_dataset(write_jsonl(tmp_path / "chat.jsonl", rows))
    m = measure_nll(model, tok, ds, max_length=512, batch_size=2)
    assert m.scored == "completion"
    for rec, doc in zip(ds.records, m.docs, strict=True):
        msgs = list(rec.messages)
        prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(msgs, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        f_ids = tok(full, add_special_tokens=False)["input_ids"]
        assert f_ids[: len(p_ids)] == p_ids
        scored = [False] * len(p_ids) + [True] * (len(f_ids) - len(p_ids))
        assert doc.tokens == len(f_ids) - len(p_ids)
        expected = _hand_nll(model, f_ids, scored, 512)
        assert math.exp(doc.nll / doc.tokens) == pytest.approx(math.exp(expected / doc.tokens), rel=1e-4)
        answer = msgs[-1]["content"]
        assert tok.decode(f_ids[len(p_ids) :]).startswith(answer)


def test_batch_size_does_not_change_results(tiny, text_data):
    model, tok = tiny
    ds = load_dataset(text_data)
    a = measure_nll(model, tok, ds, max_length=16, batch_size=1)
    b = measure_nll(model, tok, ds, max_length=16, batch_size=8)
    for x, y in zip(a.docs, b.docs, strict=True):
        assert x.nll == pytest.approx(y.nll, abs=1e-3)


def test_windows_score_every_target_once():
    from probes.perplexity import EncodedDoc

    doc = EncodedDoc(list(range(20)), [False] + [True] * 19)
    ws = windows(doc, 6)
    assert sum(sum(m) for _, m in ws) == 19
    assert all(len(inp) <= 6 for inp, _ in ws)
    assert ws[1][0][0] == ws[0][0][-1]  # a window starts at the previous window's last token
