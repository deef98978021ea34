"""The `hf` runtime on the tiny model: the one generation loop every model call goes through."""

import pytest

from harness.core.models import load_base_model, load_tokenizer
from harness.core.runtime import GenParams, HFRuntime

PROMPTS = [
    [{"role": "user", "content": "The payments API returned errors"}],
    [{"role": "user", "content": "Latency on the search cluster rose above four seconds during the sale, why?"}],
    [{"role": "user", "content": "hi"}],
]


@pytest.fixture(scope="module")
def rt(tiny_base):
    return HFRuntime(load_base_model(tiny_base), load_tokenizer(tiny_base.dir))


def test_a_batch_gives_each_prompt_what_it_gets_alone_without_padding(rt):
    p = GenParams(max_new_tokens=10)
    batched = [outs[0] for outs in rt.generate(PROMPTS, p, batch_size=8)]
    single = [rt.generate([c], p, batch_size=1)[0][0] for c in PROMPTS]
    assert batched == single  # text, token ids and finish reason
    eos = set(rt.eos_ids("turn"))
    for c in batched:
        assert 0 < len(c.token_ids) <= 10
        assert c.finish_reason == ("stop" if c.token_ids[-1] in eos else "length")
        assert c.length == len(c.token_ids) - (c.token_ids[-1] in eos)  # the answer, its end-of-turn excluded
        assert not any(t in eos for t in c.token_ids[:-1])  # nothing after the end of the answer


def test_fixed_length_and_ids_in_and_logprobs_out(rt):
    ids = rt.encode(PROMPTS[0])
    p = GenParams(max_new_tokens=6, min_new_tokens=6, eos="config", logprobs=True, top_logprobs=2)
    (c,) = rt.generate([ids], p)[0]
    assert len(c.token_ids) == 6 and c.finish_reason == "length"
    assert len(c.logprobs) == 6 and all(len(e["top_logprobs"]) == 2 for e in c.logprobs)
    # greedy: the chosen token is the most likely one, and its log-probability is what logits() says
    logits = rt.logits(ids + list(c.token_ids[:1]))
    first = c.logprobs[0]
    assert first["top_logprobs"][0]["logprob"] == pytest.approx(first["logprob"])
    assert int(logits[len(ids) - 1].argmax()) == c.token_ids[0]


def test_stop_strings_end_the_answer_and_say_so(rt):
    free = rt.generate(PROMPTS[:1], GenParams(max_new_tokens=12))[0][0]
    assert len(free.text) > 2
    stop = free.text[1:3]
    (c,) = rt.generate(PROMPTS[:1], GenParams(max_new_tokens=12, stop=(stop,)))[0]
    assert c.text == free.text[: free.text.find(stop)] and c.finish_reason == "stop"


def test_variants_share_one_model_and_the_base_stays_the_base(tiny_base, tiny_damage_adapter, tmp_path):
    """`Runtimes` opens base and candidate as one loaded model: once the adapter is on, the base still answers
    as the plain base (the adapter switched off), and the candidate as base + adapter."""
    import torch

    from harness.core.models import check_adapter
    from harness.core.runtime.load import Runtimes

    plain = HFRuntime(load_base_model(tiny_base), load_tokenizer(tiny_base.dir))
    ids = plain.encode(PROMPTS[1])
    want = plain.logits(ids)
    pool = Runtimes(tiny_base, check_adapter(tiny_damage_adapter, tiny_base), dtype="float32")
    before = pool.get("base").logits(ids)
    cand = pool.get("candidate").logits(ids)
    after = pool.get("base").logits(ids)
    assert torch.equal(before, want) and torch.equal(after, want)
    assert (cand - want).abs().max() > 1e-2  # the damage adapter really is applied to the candidate
    assert pool.get("base").identity() != pool.get("candidate").identity()
    assert pool.get("candidate").identity().adapter == check_adapter(tiny_damage_adapter, tiny_base).sha256
    with pytest.raises(ValueError, match="no artifact locator"):
        pool.get("merged")
    with pytest.raises(ValueError, match="unknown variant"):
        pool.get("quantised")


def test_a_batch_that_does_not_fit_is_answered_in_halves_with_the_same_answers(rt, monkeypatch):
    """No GPU here to run out of: the model's forward refuses more than two rows at a time, as a device would raise
    out of memory, and the batch of three is answered in smaller batches, each answer what it was in one batch."""
    import torch

    p = GenParams(max_new_tokens=8)
    whole = [outs[0] for outs in rt.generate(PROMPTS, p, batch_size=8)]
    forward = rt.model.forward
    rows_seen = []

    def small_device(*args, **kwargs):
        rows = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).shape[0]
        rows_seen.append(rows)
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated: more than two rows)")
        return forward(*args, **kwargs)

    monkeypatch.setattr(rt.model, "forward", small_device)
    halves = [outs[0] for outs in rt.generate(PROMPTS, p, batch_size=8)]
    assert halves == whole
    assert 3 in rows_seen and max(r for r in rows_seen if r != 3) <= 2  # tried whole, then answered in halves
