"""tinkex's own SamplingClient passes the sampling extras through to the local server."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tinkex
from tinkex import types
from tinkex.local import LocalServer

PROMPT = [256, 72, 101, 108, 108, 111]
P = len(PROMPT)


@pytest.fixture(scope="module")
def sampler(server: LocalServer) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        created = client.create_sampling_client(base_model="tinkex/tiny")
        yield created.result() if hasattr(created, "result") else created
        client.close()


def test_tinkex_sampling_client_extras(sampler: Any) -> None:
    params = types.SamplingParams(max_tokens=3, temperature=0.0, stop=[])
    ids = np.full((P - 1, 2), -1, dtype=np.int64)
    ids[:, 0] = PROMPT[1:]
    sparse = types.TensorData(
        data=[PROMPT[3]],
        dtype="int64",
        shape=[P - 1, 2],
        sparse_crow_indices=[0, 0, 0, 1, 1, 1],
        sparse_col_indices=[1],
    )
    prompt = types.ModelInput.from_ints(PROMPT)
    response = sampler.sample(
        prompt,
        1,
        params,
        include_prompt_logprobs=True,
        topk_sample_logprobs=2,
        target_prompt_logprobs=types.TensorData.from_numpy(ids),
        prompt_alt_tokens_k=4,
    ).result()
    seq = response.sequences[0]
    assert seq.topk_logprobs is not None and len(seq.topk_logprobs) == len(seq.tokens) == 3
    for token, logprob, row in zip(seq.tokens, seq.logprobs, seq.topk_logprobs, strict=True):
        assert row[0][0] == token and row[0][1] == pytest.approx(logprob, abs=1e-5)  # greedy
    target = response.target_prompt_logprobs
    assert target is not None and target.shape == [P - 1, 2]
    values = target.to_numpy()
    np.testing.assert_allclose(values[:, 0], response.prompt_logprobs[1:], atol=1e-5)
    assert np.all(values[:, 1] == 0.0)
    alt = response.prompt_alt_tokens
    assert alt is not None and alt.tokens.shape == alt.logprobs.shape == [P - 1, 4]
    # greedy: every draw is the most likely token, whose logprob is the best at that position
    tokens = alt.tokens.to_numpy()
    assert np.all(tokens == tokens[:, :1])
    sparse_answer = sampler.sample(prompt, 1, params, target_prompt_logprobs=sparse).result()
    answer = sparse_answer.target_prompt_logprobs
    assert answer is not None and answer.sparse_crow_indices is not None
    assert list(answer.sparse_crow_indices) == [0, 0, 0, 1, 1, 1]
    assert answer.values_array()[0] == pytest.approx(values[2, 0], abs=1e-5)
