"""Sampling extras over HTTP: topk_sample_logprobs, target_prompt_logprobs (dense and CSR),
prompt_alt_tokens_k, in JSON and protobuf results, and their bad-input answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinkex.types import _proto

from .conftest import Api
from .test_server_sampling import sampler

TOKENS = [256, 72, 101, 108, 108, 111]
PROMPT = {"chunks": [{"tokens": TOKENS, "type": "encoded_text"}]}
P = len(TOKENS)
PROTOBUF = "application/x-protobuf"


def sample(api: Api, sampler_id: str, seq_id: int, **extra: Any) -> tuple[dict[str, Any], bytes]:
    """One asample; returns its result as JSON and as protobuf bytes."""
    body: dict[str, Any] = {
        "num_samples": 2,
        "prompt": PROMPT,
        "sampling_params": {"max_tokens": 5, "temperature": 0.8, "seed": 5, "stop": []},
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "type": "sample",
    }
    body.update(extra)
    request_id = api.ok("asample", body)["request_id"]
    raw = api.result(request_id, accept=PROTOBUF)
    assert isinstance(raw, bytes)
    return api.result(request_id), raw


def dense(tensor: dict[str, Any], fill: float) -> np.ndarray:
    """A TensorData JSON object as a dense array (CSR cells not listed read as ``fill``)."""
    values = np.asarray(tensor["data"])
    if tensor.get("sparse_crow_indices") is None:
        return values.reshape(tensor["shape"])
    out = np.full(tensor["shape"], fill, dtype=values.dtype)
    crow = tensor["sparse_crow_indices"]
    for row in range(tensor["shape"][0]):
        cols = tensor["sparse_col_indices"][crow[row] : crow[row + 1]]
        out[row, cols] = values[crow[row] : crow[row + 1]]
    return out


@pytest.fixture()
def sampler_id(api: Api) -> str:
    return sampler(api)


def test_topk_sample_logprobs(api: Api, sampler_id: str) -> None:
    plain, _ = sample(api, sampler_id, 0)
    result, raw = sample(api, sampler_id, 1, topk_sample_logprobs=3)
    # asking for extras never changes the sampled tokens
    assert [s["tokens"] for s in result["sequences"]] == [s["tokens"] for s in plain["sequences"]]
    decoded = _proto.decode_sample_response(raw)
    for seq, proto_seq in zip(result["sequences"], decoded.sequences, strict=True):
        rows = seq["topk_logprobs"]
        assert len(rows) == len(seq["tokens"]) == 5
        for token, logprob, row in zip(seq["tokens"], seq["logprobs"], rows, strict=True):
            assert len(row) == 3
            values = [lp for _, lp in row]
            assert values == sorted(values, reverse=True)
            # the drawn token's logprob is at most the best one; when it is in the top-k it
            # carries the same (temperature-scaled) logprob as in seq["logprobs"]
            assert logprob <= values[0] + 1e-6
            listed = dict((t, lp) for t, lp in row)
            if token in listed:
                assert listed[token] == pytest.approx(logprob, abs=1e-5)
        assert proto_seq.topk_logprobs_np is not None
        assert proto_seq.topk_logprobs_np.token_ids.shape == (5, 3)
        assert proto_seq.topk_logprobs_np.token_ids.tolist() == [[t for t, _ in r] for r in rows]
        np.testing.assert_allclose(
            proto_seq.topk_logprobs_np.logprobs, [[lp for _, lp in r] for r in rows], atol=1e-6
        )
    assert "topk_logprobs" not in plain["sequences"][0]
    assert (
        _proto.decode_sample_response(sample(api, sampler_id, 2)[1]).sequences[0].topk_logprobs_np
        is None
    )


def test_greedy_topk_sample_logprobs_lead_with_the_sampled_token(api: Api, sampler_id: str) -> None:
    result, _ = sample(
        api,
        sampler_id,
        0,
        sampling_params={"max_tokens": 4, "temperature": 0.0, "stop": []},
        topk_sample_logprobs=2,
    )
    for seq in result["sequences"]:
        for token, logprob, row in zip(
            seq["tokens"], seq["logprobs"], seq["topk_logprobs"], strict=True
        ):
            assert row[0][0] == token and row[0][1] == pytest.approx(logprob, abs=1e-5)


def test_target_prompt_logprobs_dense(api: Api, sampler_id: str) -> None:
    targets = np.full((P - 1, 3), -1, dtype=np.int64)
    targets[:, 0] = TOKENS[1:]  # the prompt's own next tokens: equal to prompt_logprobs
    targets[1, 1] = 33
    targets[3, 2] = 0
    body = {"data": targets.reshape(-1).tolist(), "dtype": "int64", "shape": [P - 1, 3]}
    result, raw = sample(
        api,
        sampler_id,
        0,
        prompt_logprobs=True,
        topk_prompt_logprobs=4,
        target_prompt_logprobs=body,
    )
    answer = result["target_prompt_logprobs"]
    assert answer["dtype"] == "float32" and answer["shape"] == [P - 1, 3]
    assert "sparse_crow_indices" not in answer
    values = dense(answer, np.nan)
    assert values[:, 0] == pytest.approx(result["prompt_logprobs"][1:], abs=1e-5)
    assert np.all(values[targets == -1] == 0.0)
    assert values[1, 1] < 0 and values[3, 2] < 0
    # consistent with the top-k prompt logprobs of the same position
    best_id, best_lp = result["topk_prompt_logprobs"][2][0]
    probe, _ = sample(
        api,
        sampler_id,
        1,
        target_prompt_logprobs={"data": [best_id] * (P - 1), "dtype": "int64", "shape": [P - 1, 1]},
    )
    assert probe["target_prompt_logprobs"]["data"][1] == pytest.approx(best_lp, abs=1e-5)
    decoded = _proto.decode_sample_response(raw)
    assert decoded.target_prompt_logprobs is not None
    assert decoded.target_prompt_logprobs.dtype == "float32"
    assert decoded.target_prompt_logprobs.shape == [P - 1, 3]
    np.testing.assert_allclose(decoded.target_prompt_logprobs.to_numpy(), values, atol=1e-6)


def test_target_prompt_logprobs_sparse_csr(api: Api, sampler_id: str) -> None:
    # rows 0 and 3 list cells; -1 in a listed cell requests nothing (answer 0.0)
    crow = [0, 2, 2, 2, 3, 3]
    cols = [0, 2, 1]
    ids = [TOKENS[1], 40, -1]
    request = {
        "data": ids,
        "dtype": "int64",
        "shape": [P - 1, 4],
        "sparse_crow_indices": crow,
        "sparse_col_indices": cols,
    }
    result, raw = sample(api, sampler_id, 0, prompt_logprobs=True, target_prompt_logprobs=request)
    answer = result["target_prompt_logprobs"]
    assert answer["shape"] == [P - 1, 4] and answer["dtype"] == "float32"
    assert answer["sparse_crow_indices"] == crow and answer["sparse_col_indices"] == cols
    assert answer["data"][0] == pytest.approx(result["prompt_logprobs"][1], abs=1e-5)
    assert answer["data"][1] < 0 and answer["data"][2] == 0.0
    decoded = _proto.decode_sample_response(raw).target_prompt_logprobs
    assert decoded is not None and decoded.sparse_crow_indices is not None
    assert list(decoded.sparse_crow_indices) == crow
    assert list(decoded.sparse_col_indices or []) == cols
    np.testing.assert_allclose(decoded.values_array(), answer["data"], atol=1e-6)


def test_prompt_alt_tokens(api: Api, sampler_id: str) -> None:
    result, raw = sample(api, sampler_id, 0, prompt_alt_tokens_k=6)
    alt = result["prompt_alt_tokens"]
    tokens, logprobs = dense(alt["tokens"], 0), dense(alt["logprobs"], 0)
    assert alt["tokens"]["dtype"] == "int64" and alt["logprobs"]["dtype"] == "float32"
    assert tokens.shape == logprobs.shape == (P - 1, 6)
    assert np.all((tokens >= 0) & (tokens < 264)) and np.all(logprobs < 0)
    # the logprobs are the model's logprobs of the drawn ids (checked via target logprobs)
    probe, _ = sample(
        api,
        sampler_id,
        1,
        target_prompt_logprobs={
            "data": tokens.reshape(-1).tolist(),
            "dtype": "int64",
            "shape": [P - 1, 6],
        },
    )
    np.testing.assert_allclose(dense(probe["target_prompt_logprobs"], 0), logprobs, atol=1e-5)
    # same seed, same draws; greedy draws repeat the best token
    again, _ = sample(api, sampler_id, 2, prompt_alt_tokens_k=6)
    assert again["prompt_alt_tokens"] == alt
    greedy, _ = sample(
        api,
        sampler_id,
        3,
        sampling_params={"max_tokens": 1, "temperature": 0.0},
        prompt_alt_tokens_k=3,
        topk_prompt_logprobs=1,
    )
    best = [row[0][0] for row in greedy["topk_prompt_logprobs"][1:]]
    assert dense(greedy["prompt_alt_tokens"]["tokens"], 0).tolist() == [[b] * 3 for b in best]
    decoded = _proto.decode_sample_response(raw).prompt_alt_tokens
    assert decoded is not None
    assert decoded.tokens.dtype == "int64" and decoded.tokens.shape == [P - 1, 6]
    assert decoded.tokens.to_numpy().tolist() == tokens.tolist()
    np.testing.assert_allclose(decoded.logprobs.to_numpy(), logprobs, atol=1e-6)
    assert "prompt_alt_tokens" not in sample(api, sampler_id, 4)[0]


def test_null_model_answers_every_extra(api: Api) -> None:
    null_sampler = sampler(api, "tinkex/null")
    result, raw = sample(
        api,
        null_sampler,
        0,
        topk_sample_logprobs=2,
        prompt_alt_tokens_k=2,
        target_prompt_logprobs={
            "data": [5, -1] * (P - 1),
            "dtype": "int64",
            "shape": [P - 1, 2],
        },
    )
    assert len(result["sequences"][0]["topk_logprobs"][0]) == 2
    assert dense(result["target_prompt_logprobs"], 0)[:, 1].tolist() == [0.0] * (P - 1)
    assert result["prompt_alt_tokens"]["tokens"]["shape"] == [P - 1, 2]
    decoded = _proto.decode_sample_response(raw)
    assert decoded.prompt_alt_tokens is not None and decoded.target_prompt_logprobs is not None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"topk_sample_logprobs": -1}, "topk_sample_logprobs"),
        ({"topk_sample_logprobs": 10_000}, "topk_sample_logprobs"),
        ({"prompt_alt_tokens_k": 100_000}, "prompt_alt_tokens_k"),
        ({"prompt_alt_tokens_k": "3"}, "prompt_alt_tokens_k"),
        ({"prompt_logprobs": True, "prompt_logprobs_last_n": P}, "prompt_logprobs_last_n"),
        (
            {"target_prompt_logprobs": {"data": [1, 2], "dtype": "int64", "shape": [2, 1]}},
            "[5, K]",
        ),
        (
            {"target_prompt_logprobs": {"data": [1.0] * 5, "dtype": "float32", "shape": [5, 1]}},
            "int64",
        ),
        (
            {"target_prompt_logprobs": {"data": [999] * 5, "dtype": "int64", "shape": [5, 1]}},
            "999",
        ),
        ({"target_prompt_logprobs": {"data": [1] * 5, "dtype": "int64", "shape": [5]}}, "2-D"),
        ({"target_prompt_logprobs": [1, 2]}, "target_prompt_logprobs"),
        (
            {
                "target_prompt_logprobs": {
                    "data": [1],
                    "dtype": "int64",
                    "shape": [5, 2],
                    "sparse_crow_indices": [0, 1, 1, 1, 1, 2],
                    "sparse_col_indices": [0],
                }
            },
            "sparse",
        ),
        (
            {
                "target_prompt_logprobs": {
                    "data": [1],
                    "dtype": "int64",
                    "shape": [5, 2],
                    "sparse_crow_indices": [0, 1, 1, 1, 1, 1],
                    "sparse_col_indices": [7],
                }
            },
            "sparse_col_indices",
        ),
    ],
)
def test_bad_extras_are_400_naming_the_field(
    api: Api, sampler_id: str, extra: dict[str, Any], needle: str
) -> None:
    body = {
        "num_samples": 1,
        "prompt": PROMPT,
        "sampling_params": {"max_tokens": 1},
        "sampling_session_id": sampler_id,
        "seq_id": 0,
        **extra,
    }
    response = api.post("asample", body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert needle in detail, detail
    field = next(iter(extra)) if len(extra) == 1 else "prompt_logprobs_last_n"
    assert field in detail, detail
