"""The OFFICIAL ``tinker`` 0.38 sampling extras against the local server: topk_sample_logprobs,
target_prompt_logprobs (dense and sparse CSR) and prompt_alt_tokens_k, decoded from protobuf."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

tinker = pytest.importorskip("tinker")
from tinker import types  # noqa: E402

from tinkex.local import LocalServer  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PROMPT = [256, 72, 101, 108, 108, 111]
P = len(PROMPT)


@pytest.fixture(scope="module")
def sampler() -> Iterator[Any]:
    with (
        LocalServer(long_poll_seconds=1.0) as server,
        tinker.ServiceClient(base_url=server.base_url, api_key="tml-local") as client,
    ):
        created = client.create_sampling_client(base_model="Qwen/Qwen3-8B")
        yield created.result() if hasattr(created, "result") else created


def run(sampler: Any, **extras: Any) -> Any:
    params = types.SamplingParams(max_tokens=4, temperature=0.7, seed=9, stop=[])
    return sampler.sample(types.ModelInput.from_ints(PROMPT), 2, params, **extras).result()


def test_topk_sample_logprobs(sampler: Any) -> None:
    plain = run(sampler)
    response = run(sampler, topk_sample_logprobs=2)
    assert [s.tokens for s in response.sequences] == [s.tokens for s in plain.sequences]
    for seq in response.sequences:
        assert seq.topk_logprobs_np is not None
        assert seq.topk_logprobs_np.token_ids.shape == (len(seq.tokens), 2)
        assert len(seq.topk_logprobs) == len(seq.tokens)
        for row, logprob in zip(seq.topk_logprobs, seq.logprobs, strict=True):
            assert row is not None and len(row) == 2
            assert row[0][1] >= row[1][1] and row[0][1] >= logprob - 1e-5
    assert plain.sequences[0].topk_logprobs is None


def test_target_prompt_logprobs_dense_and_sparse(sampler: Any) -> None:
    ids = np.full((P - 1, 2), -1, dtype=np.int64)
    ids[:, 0] = PROMPT[1:]
    ids[2, 1] = 65
    target = types.TensorData(data=ids.reshape(-1).tolist(), dtype="int64", shape=[P - 1, 2])
    response = run(sampler, include_prompt_logprobs=True, target_prompt_logprobs=target)
    answer = response.target_prompt_logprobs
    assert answer is not None and answer.dtype == "float32" and answer.shape == [P - 1, 2]
    values = np.asarray(answer.data, dtype=np.float32).reshape(P - 1, 2)
    np.testing.assert_allclose(values[:, 0], response.prompt_logprobs[1:], atol=1e-5)
    assert values[2, 1] < 0 and values[0, 1] == 0.0
    sparse = types.TensorData(
        data=[PROMPT[2], 65],
        dtype="int64",
        shape=[P - 1, 3],
        sparse_crow_indices=[0, 0, 1, 1, 1, 2],
        sparse_col_indices=[2, 0],
    )
    answer = run(sampler, target_prompt_logprobs=sparse).target_prompt_logprobs
    assert answer is not None and answer.shape == [P - 1, 3]
    assert list(answer.sparse_crow_indices) == [0, 0, 1, 1, 1, 2]
    assert list(answer.sparse_col_indices) == [2, 0]
    assert answer.data[0] == pytest.approx(values[1, 0], abs=1e-5) and answer.data[1] < 0


def test_prompt_alt_tokens(sampler: Any) -> None:
    response = run(sampler, prompt_alt_tokens_k=3)
    alt = response.prompt_alt_tokens
    assert alt is not None
    assert alt.tokens.dtype == "int64" and alt.tokens.shape == [P - 1, 3]
    assert alt.logprobs.dtype == "float32" and alt.logprobs.shape == [P - 1, 3]
    tokens = np.asarray(alt.tokens.data).reshape(P - 1, 3)
    assert np.all((tokens >= 0) & (tokens < 264))
    assert all(lp < 0 for lp in alt.logprobs.data)
    again = run(sampler, prompt_alt_tokens_k=3).prompt_alt_tokens  # same seed, same draws
    assert again is not None and list(again.tokens.data) == list(alt.tokens.data)
