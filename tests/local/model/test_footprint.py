"""The memory estimates the server admits work with (tinkex/local/model/footprint.py) are upper
bounds of what the model allocates, and not wildly above it (tracemalloc measures numpy)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinkex.local.model import (
    DatumArrays,
    LoraSpec,
    SampleSettings,
    create_trainable,
    resolve_arch,
    sample,
)
from tinkex.local.model.footprint import (
    forward_backward_bytes,
    sample_bytes,
    snapshot_bytes,
    trainable_bytes,
)

ARCH = resolve_arch("tinkex/tiny")


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def trained() -> Any:
    model = create_trainable(ARCH, LoraSpec(rank=32))
    model.sampler_weights().effective()  # the base weights exist before anything is measured
    return model


@pytest.mark.parametrize("rank", [4, 32, 256])
def test_training_run_and_snapshot(trained: Any, rank: int) -> None:
    lora = LoraSpec(rank=rank)

    def build() -> Any:
        model = create_trainable(ARCH, lora)
        datum = DatumArrays(np.array([1, 2]), {"target_tokens": np.array([2, 3])})
        model.forward_backward([datum], "cross_entropy", None, forward_only=False)
        return model

    measured, model = _peak(build)
    assert measured <= trainable_bytes(ARCH, lora)
    assert trainable_bytes(ARCH, lora) <= 3 * measured or rank < 32
    snapshot, _ = _peak(lambda: model.sampler_weights().effective())
    assert snapshot <= snapshot_bytes(ARCH, rank)


@pytest.mark.parametrize("lengths", [[512] * 4, [30] * 100, [5] * 1000, [100, 60, 7]])
@pytest.mark.parametrize("forward_only", [False, True])
def test_forward_backward(trained: Any, lengths: list[int], forward_only: bool) -> None:
    rng = np.random.default_rng(0)
    data = [
        DatumArrays(
            rng.integers(0, 256, n),
            {"target_tokens": rng.integers(0, 256, n), "weights": np.ones(n, np.float32)},
        )
        for n in lengths
    ]
    measured, _ = _peak(
        lambda: trained.forward_backward(data, "cross_entropy", None, forward_only=forward_only)
    )
    estimate = forward_backward_bytes(ARCH, lengths, forward_only)
    assert measured <= estimate <= 3 * measured


@pytest.mark.parametrize(
    "prompt_length, num_samples, max_tokens, topk",
    [(10, 1, 16, 0), (100, 64, 200, 0), (400, 8, 100, 20), (200, 4, 50, 264)],
)
def test_sample(
    trained: Any, prompt_length: int, num_samples: int, max_tokens: int, topk: int
) -> None:
    weights = trained.sampler_weights()
    weights.effective()
    settings = SampleSettings(max_tokens=max_tokens, seed=1, stop_token_ids=())
    prompt = np.arange(prompt_length) % 256
    measured, _ = _peak(
        lambda: sample(
            weights,
            prompt,
            num_samples,
            settings,
            prompt_logprobs=True,
            topk_prompt_logprobs=topk,
            topk_sample_logprobs=topk,
        )
    )
    estimate = sample_bytes(
        ARCH, prompt_length, num_samples, max_tokens, topk_prompt=topk, topk_sample=topk
    )
    assert measured <= estimate <= 3 * measured
