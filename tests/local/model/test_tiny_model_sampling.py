"""Sampling from the tiny transformer and the null model; prompt scoring."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tinkex.local.model import (
    DatumArrays,
    LoraSpec,
    SamplerWeights,
    SampleSettings,
    create_trainable,
    resolve_arch,
    sample,
)
from tinkex.tokenizer.byte import BOS_ID, EOS_ID

TINY = resolve_arch("tinkex/tiny")
NULL = resolve_arch("tinkex/null")
PROMPT = np.array([BOS_ID, *b"Hello, tiny model"], np.int64)


@pytest.fixture(scope="module")
def weights() -> SamplerWeights:
    """A trained-ish snapshot (non-zero LoRA) so sampling exercises the merged weights."""
    model = create_trainable(TINY, LoraSpec(rank=4, seed=1))
    state = model.state_dict(include_optimizer=False)
    rng = np.random.default_rng(0)
    for key in state:
        if key.endswith("lora_B"):
            state[key] = (rng.standard_normal(state[key].shape) * 0.05).astype(np.float32)
    model.load_state_dict(state, include_optimizer=False)
    return model.sampler_weights()


def _forward_logprobs(w: SamplerWeights, tokens: np.ndarray) -> np.ndarray:
    model = create_trainable(TINY, LoraSpec(rank=4))
    model.load_state_dict(w.state_dict(), include_optimizer=False)
    datum = DatumArrays(tokens[:-1], {"target_tokens": tokens[1:]})
    return model.forward_backward([datum], "cross_entropy", None, forward_only=True).outputs[0][
        "logprobs"
    ]


def test_greedy_is_deterministic_and_identical_across_samples(weights: SamplerWeights) -> None:
    settings = SampleSettings(max_tokens=12, temperature=0.0, stop_token_ids=())
    first, _ = sample(weights, PROMPT, 3, settings)
    again, _ = sample(weights, PROMPT, 1, settings)
    assert len(first) == 3
    for out in first:
        np.testing.assert_array_equal(out.tokens, again[0].tokens)
        assert out.tokens.dtype == np.int32 and out.logprobs.dtype == np.float32
        assert out.stop_reason == "length" and out.tokens.shape == (12,)


def test_seed_gives_reproducible_samples(weights: SamplerWeights) -> None:
    settings = SampleSettings(max_tokens=20, seed=123, stop_token_ids=())
    a, _ = sample(weights, PROMPT, 4, settings)
    b, _ = sample(weights, PROMPT, 4, settings)
    c, _ = sample(weights, PROMPT, 4, SampleSettings(max_tokens=20, seed=124, stop_token_ids=()))
    assert [x.tokens.tolist() for x in a] == [x.tokens.tolist() for x in b]
    assert [x.tokens.tolist() for x in a] != [x.tokens.tolist() for x in c]
    assert len({tuple(x.tokens.tolist()) for x in a}) > 1  # samples in a batch differ


def test_kv_cache_decoding_matches_full_forward(weights: SamplerWeights) -> None:
    # at temperature 1 the sampled-token logprobs are the model's logprobs of the full sequence
    out, _ = sample(weights, PROMPT, 2, SampleSettings(max_tokens=15, seed=5, stop_token_ids=()))
    for row in out:
        full = np.concatenate([PROMPT, row.tokens.astype(np.int64)])
        expected = _forward_logprobs(weights, full)[len(PROMPT) - 1 :]
        np.testing.assert_allclose(row.logprobs, expected, atol=2e-4)


def _next_token_logprobs(w: SamplerWeights) -> np.ndarray:
    """Full next-token log-softmax after PROMPT (row -1 of top-V prompt scores)."""
    extended = np.concatenate([PROMPT, [0]])
    _, scores = sample(w, extended, 1, SampleSettings(max_tokens=1), topk_prompt_logprobs=264)
    assert scores is not None and scores.topk_ids is not None
    assert scores.topk_logprobs is not None
    row = np.empty(TINY.vocab_size, np.float64)
    row[scores.topk_ids[-1]] = scores.topk_logprobs[-1]
    return row


def test_sampled_logprobs_are_log_softmax_at_the_temperature(weights: SamplerWeights) -> None:
    full = _next_token_logprobs(weights)
    out, scores = sample(weights, PROMPT, 8, SampleSettings(max_tokens=1, temperature=0.5, seed=1))
    assert scores is None
    tempered = full / 0.5 - np.log(np.sum(np.exp(full / 0.5)))
    for row in out:
        assert row.logprobs[0] == pytest.approx(tempered[int(row.tokens[0])], abs=1e-4)
    (greedy,), _ = sample(weights, PROMPT, 1, SampleSettings(max_tokens=1, temperature=0.0))
    assert int(greedy.tokens[0]) == int(np.argmax(full))
    assert greedy.logprobs[0] == pytest.approx(full.max(), abs=1e-4)  # plain log-softmax


def test_top_k_one_and_tiny_top_p_are_greedy(weights: SamplerWeights) -> None:
    greedy, _ = sample(weights, PROMPT, 1, SampleSettings(max_tokens=8, temperature=0.0))
    top_k, _ = sample(weights, PROMPT, 3, SampleSettings(max_tokens=8, top_k=1, seed=9))
    top_p, _ = sample(weights, PROMPT, 3, SampleSettings(max_tokens=8, top_p=1e-6, seed=9))
    for out in (*top_k, *top_p):
        np.testing.assert_array_equal(out.tokens, greedy[0].tokens)


def test_top_k_restricts_the_support(weights: SamplerWeights) -> None:
    allowed = set(np.argsort(-_next_token_logprobs(weights))[:5].tolist())
    out, _ = sample(weights, PROMPT, 64, SampleSettings(max_tokens=1, top_k=5, seed=3))
    assert {int(o.tokens[0]) for o in out} <= allowed


def test_stop_token_and_stop_sequence(weights: SamplerWeights) -> None:
    free = SampleSettings(max_tokens=10, temperature=0.0, stop_token_ids=())
    (greedy,), _ = sample(weights, PROMPT, 1, free)
    tokens = greedy.tokens.tolist()
    settings = SampleSettings(max_tokens=10, temperature=0.0, stop_token_ids=(tokens[2],))
    (stopped,), _ = sample(weights, PROMPT, 1, settings)
    first = tokens.index(tokens[2])
    assert stopped.tokens.tolist() == tokens[: first + 1] and stopped.stop_reason == "stop"
    assert stopped.logprobs.shape == stopped.tokens.shape
    seq = SampleSettings(
        max_tokens=10, temperature=0.0, stop_token_ids=(), stop_sequences=(tuple(tokens[3:5]),)
    )
    (by_seq,), _ = sample(weights, PROMPT, 1, seq)
    assert by_seq.stop_reason == "stop"
    assert by_seq.tokens.tolist()[-2:] == tokens[3:5]
    assert len(by_seq.tokens) <= 5


def test_max_tokens_gives_length(weights: SamplerWeights) -> None:
    out, _ = sample(weights, PROMPT, 2, SampleSettings(max_tokens=7, stop_token_ids=(), seed=1))
    assert all(o.stop_reason == "length" and len(o.tokens) == 7 for o in out)
    empty, _ = sample(weights, PROMPT, 1, SampleSettings(max_tokens=0))
    assert empty[0].tokens.shape == (0,) and empty[0].stop_reason == "length"


def test_prompt_logprobs_and_topk(weights: SamplerWeights) -> None:
    out, scores = sample(
        weights,
        PROMPT,
        1,
        SampleSettings(max_tokens=2),
        prompt_logprobs=True,
        topk_prompt_logprobs=4,
    )
    assert scores is not None and scores.topk_ids is not None and scores.topk_logprobs is not None
    n = len(PROMPT)
    assert scores.logprobs.shape == (n,) and math.isnan(scores.logprobs[0])
    np.testing.assert_allclose(scores.logprobs[1:], _forward_logprobs(weights, PROMPT), atol=1e-4)
    assert scores.topk_ids.shape == (n, 4) and scores.topk_logprobs.shape == (n, 4)
    assert scores.topk_ids.dtype == np.int32 and scores.topk_logprobs.dtype == np.float32
    assert np.all(scores.topk_ids[0] == -1) and np.all(np.isnan(scores.topk_logprobs[0]))
    assert np.all(np.diff(scores.topk_logprobs[1:], axis=1) <= 0)  # best first
    assert np.all(scores.topk_logprobs[1:, 0] >= scores.logprobs[1:] - 1e-6)
    only_lp, _ = sample(weights, PROMPT, 1, SampleSettings(max_tokens=1), prompt_logprobs=True)
    _, plain = sample(weights, PROMPT, 1, SampleSettings(max_tokens=1), prompt_logprobs=True)
    assert plain is not None and plain.topk_ids is None
    assert len(out) == 1 and len(only_lp) == 1


def test_base_and_state_dict_round_trip(weights: SamplerWeights) -> None:
    settings = SampleSettings(max_tokens=1)
    _, a = sample(weights, PROMPT, 1, settings, prompt_logprobs=True)
    copy = SamplerWeights.from_state_dict(TINY, weights.state_dict())
    _, b = sample(copy, PROMPT, 1, settings, prompt_logprobs=True)
    base = SamplerWeights.base(TINY)
    _, c = sample(base, PROMPT, 1, settings, prompt_logprobs=True)
    fresh = create_trainable(TINY, LoraSpec(rank=2)).sampler_weights()
    _, d = sample(fresh, PROMPT, 1, settings, prompt_logprobs=True)
    assert a is not None and b is not None and c is not None and d is not None
    np.testing.assert_array_equal(a.logprobs, b.logprobs)
    assert copy.lora_rank == 4 and base.lora_rank is None
    assert not np.allclose(a.logprobs[1:], c.logprobs[1:])
    np.testing.assert_allclose(c.logprobs, d.logprobs, atol=1e-6)


def test_tiny_sampling_stops_on_eos_by_default() -> None:
    settings = SampleSettings(max_tokens=200, seed=0)
    out, _ = sample(SamplerWeights.base(TINY), PROMPT, 16, settings)
    stopped = [o for o in out if o.stop_reason == "stop"]
    assert all(int(o.tokens[-1]) == EOS_ID for o in stopped)
    assert all(len(o.tokens) == 200 for o in out if o.stop_reason == "length")


# ----------------------------------------------------------------------------- null model


def test_null_sampling_is_cheap_and_deterministic() -> None:
    w = SamplerWeights.base(NULL)
    settings = SampleSettings(max_tokens=32, seed=4, stop_token_ids=())
    a, scores = sample(w, PROMPT, 3, settings, prompt_logprobs=True, topk_prompt_logprobs=2)
    b, _ = sample(w, PROMPT, 3, settings)
    assert [x.tokens.tolist() for x in a] == [x.tokens.tolist() for x in b]
    assert all(len(x.tokens) == 32 and x.stop_reason == "length" for x in a)
    assert all(np.all((x.tokens >= 0) & (x.tokens < 256)) for x in a)
    assert np.allclose(a[0].logprobs, -math.log(NULL.vocab_size))
    assert scores is not None and scores.topk_ids is not None
    assert math.isnan(scores.logprobs[0]) and scores.topk_ids.shape == (len(PROMPT), 2)
    stop_at = int(a[0].tokens[5])
    (stopped, *_), _ = sample(
        w, PROMPT, 3, SampleSettings(max_tokens=32, seed=4, stop_token_ids=(stop_at,))
    )
    assert stopped.stop_reason == "stop" and int(stopped.tokens[-1]) == stop_at
    seq = tuple(int(t) for t in a[0].tokens[3:6])
    (by_seq, *_), _ = sample(
        w,
        PROMPT,
        3,
        SampleSettings(max_tokens=32, seed=4, stop_token_ids=(), stop_sequences=(seq,)),
    )
    assert by_seq.stop_reason == "stop" and tuple(by_seq.tokens[-3:].tolist()) == seq
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        sample(w, PROMPT, 8, SampleSettings(max_tokens=256))
        best = min(best, time.perf_counter() - start)
    assert best < 0.05


def test_null_sampling_draws_the_seeds_stream_in_any_order_and_thread() -> None:
    """A seeded null sample is the seed's own numpy stream (lowercase letters), whatever was
    sampled before it with other seeds or in other threads."""
    from concurrent.futures import ThreadPoolExecutor

    w = SamplerWeights.base(NULL)

    def tokens(seed: int | None, n: int = 2, stop: tuple[int, ...] = ()) -> list[list[int]]:
        settings = SampleSettings(max_tokens=8, seed=seed, stop_token_ids=stop)
        return [x.tokens.tolist() for x in sample(w, PROMPT, n, settings)[0]]

    def expected(seed: int) -> list[list[int]]:
        drawn = np.random.default_rng(seed % (1 << 64)).integers(97, 123, size=(2, 8))
        return drawn.astype(np.int32).tolist()

    seeds = [1, 2, 1, -3, 2**70, 1, 2]
    assert [tokens(seed) for seed in seeds] == [expected(seed) for seed in seeds]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(tokens, seeds * 4)) == [expected(seed) for seed in seeds * 4]
    assert len(tokens(None, 3)) == 3
    # an id the null model never draws (EOS) never stops it; a drawn letter does
    assert tokens(1, stop=(EOS_ID, 300)) == expected(1)
    letter = expected(1)[0][2]
    assert tokens(1, stop=(EOS_ID, letter))[0] == expected(1)[0][:3]
