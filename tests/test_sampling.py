"""Batched sampling on a tiny model: left padding, greedy = unbatched greedy, seeds, stop sequences."""

import pytest

from harness.core.models import load_base_model, load_tokenizer
from probes.sampling import SamplingParams, sample, truncate_at_stop

PROMPTS = [
    [{"role": "user", "content": "The payments API returned errors"}],
    [{"role": "user", "content": "Latency on the search cluster rose above four seconds during the sale, why?"}],
    [{"role": "user", "content": "hi"}],
]


@pytest.fixture(scope="module")
def tiny(tiny_base):
    return load_base_model(tiny_base), load_tokenizer(tiny_base.dir)


def test_batched_greedy_equals_one_at_a_time(tiny):
    model, tok = tiny
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=12)
    batched = sample(model, tok, PROMPTS, params, batch_size=16)
    single = [sample(model, tok, [p], params, batch_size=1)[0] for p in PROMPTS]
    assert batched == single
    assert all(len(outs) == 2 and outs[0] == outs[1] for outs in batched)
    assert tok.padding_side == "right"  # restored for everyone else


def test_sampling_is_seeded(tiny):
    model, tok = tiny
    a = sample(model, tok, PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=3))
    b = sample(model, tok, PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=3))
    c = sample(model, tok, PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=4))
    assert a == b and a != c
    assert all(len(outs) == 4 for outs in a)


def test_stop_sequences_end_the_answer():
    assert truncate_at_stop("answer\n\nQ: next", ("\n\n", "Q:")) == "answer"
    assert truncate_at_stop("no stop here", ("###",)) == "no stop here"
