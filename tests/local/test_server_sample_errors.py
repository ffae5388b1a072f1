"""The local server's answers to bad ``asample`` bodies name the field and the value: the
converter's messages, whichever way the body is read (``tinkex.local.codec.sample_call``).
Pinned texts, so a faster reading of plain bodies cannot change what a bad one is told."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tinkex.local import LocalServer

from .conftest import Api

#: (case, fields replacing those of a good body (None: field left out), the 400's detail)
BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "num_samples zero",
        {"num_samples": 0},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest (SampleRequest.num_samples must be an int >= 1, got 0)"
        ),
    ),
    (
        "num_samples text",
        {"num_samples": "two"},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int @ SampleRequest.num_samples (expected an integer, "
            "got str 'two')"
        ),
    ),
    (
        "num_samples bool",
        {"num_samples": True},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int @ SampleRequest.num_samples (expected an integer, "
            "got bool True)"
        ),
    ),
    (
        "num_samples fraction",
        {"num_samples": 1.5},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int @ SampleRequest.num_samples (expected an integer, "
            "got float 1.5)"
        ),
    ),
    (
        "seq_id text",
        {"seq_id": "abc"},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int | None @ SampleRequest.seq_id (expected an integer,"
            " got 'abc' (str))"
        ),
    ),
    (
        "session id int",
        {"sampling_session_id": 5},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected str | None @ SampleRequest.sampling_session_id "
            "(expected a string, got 5 (int))"
        ),
    ),
    (
        "prompt missing",
        {"prompt": None},
        (
            "invalid SampleRequest from POST /api/v1/asample: required field "
            "missing @ SampleRequest.prompt ('prompt')"
        ),
    ),
    (
        "chunks not a list",
        {"prompt": {"chunks": "x"}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected tinkex.types._model_input.EncodedTextChunk | "
            "tinkex.types._model_input.ImageAssetPointerChunk | "
            "tinkex.types._model_input.ImageChunk | "
            "tinkex.types._model_input.DmelChunk @ SampleRequest.prompt.chunks[0] "
            "(expected an object with 'type', got str)"
        ),
    ),
    (
        "negative token",
        {"prompt": {"chunks": [{"tokens": [1, -1], "type": "encoded_text"}]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.prompt.chunks[0] (EncodedTextChunk.tokens[1] must be a "
            "token id in 0..4294967295, got -1)"
        ),
    ),
    (
        "token beyond 32 bits",
        {"prompt": {"chunks": [{"tokens": [4294967296], "type": "encoded_text"}]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.prompt.chunks[0] (EncodedTextChunk.tokens[0] must be a "
            "token id in 0..4294967295, got 4294967296)"
        ),
    ),
    (
        "text token",
        {"prompt": {"chunks": [{"tokens": ["a"], "type": "encoded_text"}]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int @ SampleRequest.prompt.chunks[0].tokens[0] "
            "(expected an integer, got str 'a')"
        ),
    ),
    (
        "fractional token",
        {"prompt": {"chunks": [{"tokens": [1.5], "type": "encoded_text"}]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int @ SampleRequest.prompt.chunks[0].tokens[0] "
            "(expected an integer, got float 1.5)"
        ),
    ),
    (
        "unknown chunk type",
        {"prompt": {"chunks": [{"tokens": [1], "type": "bogus"}]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: unknown error (bogus "
            "not in literal typing.Literal['encoded_text']) @ "
            "SampleRequest.prompt.chunks[0].type"
        ),
    ),
    (
        "params missing",
        {"sampling_params": None},
        (
            "invalid SampleRequest from POST /api/v1/asample: required field "
            "missing @ SampleRequest.sampling_params ('sampling_params')"
        ),
    ),
    (
        "max_tokens zero",
        {"sampling_params": {"max_tokens": 0}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.sampling_params (SamplingParams.max_tokens must be >= 1 "
            "(or None for the server's limit), got 0; to score a prompt without "
            "sampling, use max_tokens=1 with prompt_logprobs "
            "(SamplingClient.compute_logprobs))"
        ),
    ),
    (
        "max_tokens text",
        {"sampling_params": {"max_tokens": "many"}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int | None @ SampleRequest.sampling_params.max_tokens "
            "(expected an integer, got 'many' (str))"
        ),
    ),
    (
        "temperature negative",
        {"sampling_params": {"temperature": -1}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.sampling_params (SamplingParams.temperature must be a "
            "finite number >= 0, got -1.0)"
        ),
    ),
    (
        "temperature text",
        {"sampling_params": {"temperature": "hot"}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected float @ SampleRequest.sampling_params.temperature "
            "(expected a number, got str 'hot')"
        ),
    ),
    (
        "top_k zero",
        {"sampling_params": {"top_k": 0}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.sampling_params (SamplingParams.top_k must be -1 (no "
            "limit) or >= 1, got 0)"
        ),
    ),
    (
        "top_p above one",
        {"sampling_params": {"top_p": 2}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.sampling_params (SamplingParams.top_p must be in (0, 1],"
            " got 2.0)"
        ),
    ),
    (
        "stop mixed",
        {"sampling_params": {"stop": [1, "a"]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected str | collections.abc.Sequence[str] | "
            "collections.abc.Sequence[int] | None @ "
            "SampleRequest.sampling_params.stop (expected str or Sequence or "
            "Sequence or NoneType, got [1, 'a'] (list))"
        ),
    ),
    (
        "stop negative id",
        {"sampling_params": {"stop": [-5]}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest.sampling_params (SamplingParams.stop[0] must be a token "
            "id in 0..4294967295, got -5)"
        ),
    ),
    (
        "seed text",
        {"sampling_params": {"seed": "x"}},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value for "
            "type, expected int | None @ SampleRequest.sampling_params.seed "
            "(expected an integer, got 'x' (str))"
        ),
    ),
    (
        "topk negative",
        {"topk_prompt_logprobs": -1},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest (SampleRequest.topk_prompt_logprobs must be an int >= 0,"
            " got -1)"
        ),
    ),
    (
        "last_n zero",
        {"prompt_logprobs_last_n": 0},
        (
            "invalid SampleRequest from POST /api/v1/asample: invalid value @ "
            "SampleRequest (SampleRequest.prompt_logprobs_last_n must be an int >= "
            "1, got 0)"
        ),
    ),
    (
        "type wrong",
        {"type": "nope"},
        (
            "invalid SampleRequest from POST /api/v1/asample: unknown error (nope "
            "not in literal typing.Literal['sample']) @ SampleRequest.type"
        ),
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


def _body(sampler_id: str, seq_id: int, /, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "num_samples": 1,
        "prompt": {"chunks": [{"tokens": [256, 72], "type": "encoded_text"}]},
        "sampling_params": {"max_tokens": 2, "seed": 1},
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
    }
    body.update(fields)
    return {name: value for name, value in body.items() if value is not None}


@pytest.mark.parametrize(("fields", "detail"), [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_sample_bodies_are_told_the_field_and_value(
    server: LocalServer, fields: dict[str, Any], detail: str
) -> None:
    api = Api(server)
    sampler_id = api.sampler(base_model="tinkex/null")
    response = api.post("asample", _body(sampler_id, 0, **fields))
    assert response.status_code == 400
    assert response.json()["detail"] == detail


@pytest.mark.parametrize(
    "fields",
    [
        {"bogus": 1},
        {"sampling_params": {"max_tokens": 2, "bogus": 1}},
        {"prompt_logprobs": "yes"},
        {"num_samples": 1.0, "seq_id": 0.0},
        {"sampling_params": {"max_tokens": 2.0, "seed": True, "temperature": 1}},
        {"prompt": {"chunks": [{"tokens": [256.0, 72], "type": "encoded_text"}]}},
    ],
    ids=["unknown field", "unknown params field", "lax bool", "lax ints", "lax params", "lax ids"],
)
def test_what_the_converter_accepts_is_sampled(server: LocalServer, fields: dict[str, Any]) -> None:
    api = Api(server)
    sampler_id = api.sampler(base_model="tinkex/null")
    future = api.ok("asample", _body(sampler_id, 0, **fields))
    assert len(api.result(future["request_id"])["sequences"]) == 1
