"""Sampling over HTTP: sampling sessions, asample, stop handling, logprobs, protobuf results."""

from __future__ import annotations

from typing import Any

import pytest

from tinkex.tokenizer.byte import EOS_ID
from tinkex.types import _proto

from .conftest import Api, datum, fwdbwd, optim

PROMPT = {"chunks": [{"tokens": [256, 72, 101], "type": "encoded_text"}]}


def sampler(api: Api, base_model: str = "tinkex/tiny") -> str:
    session = api.session()
    response = api.ok(
        "create_sampling_session",
        {
            "session_id": session,
            "sampling_session_seq_id": 0,
            "base_model": base_model,
            "type": "create_sampling_session",
        },
    )
    assert response["type"] == "create_sampling_session"
    assert response["sampling_session_id"] == f"{session}:sample:0"
    return str(response["sampling_session_id"])


def asample(api: Api, sampler_id: str, seq_id: int, **overrides: Any) -> dict[str, Any]:
    params = {"max_tokens": 6, "temperature": 1.0, "seed": 11}
    params.update(overrides.pop("params", {}))
    body = {
        "num_samples": 2,
        "prompt": PROMPT,
        "sampling_params": params,
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "type": "sample",
    }
    body.update(overrides)
    return dict(api.ok("asample", body))


def test_asample_returns_sequence_ids_and_tokens(api: Api) -> None:
    sampler_id = sampler(api)
    future = asample(api, sampler_id, 0, num_samples=3)
    assert len(future["sample_sequence_ids"]) == 3
    assert all(isinstance(s, str) for s in future["sample_sequence_ids"])
    result = api.result(future["request_id"])
    assert result["type"] == "sample" and len(result["sequences"]) == 3
    for seq, seq_id in zip(result["sequences"], future["sample_sequence_ids"], strict=True):
        assert seq["sequence_id"] == seq_id
        assert 1 <= len(seq["tokens"]) <= 6 and len(seq["logprobs"]) == len(seq["tokens"])
        assert seq["stop_reason"] in ("stop", "length")
        assert all(0 <= t < 264 for t in seq["tokens"])
    info = api.get(f"samplers/{sampler_id}").json()
    assert info == {
        "sampler_id": sampler_id,
        "base_model": "tinkex/tiny",
        "model_path": None,
        "tokenizer_id": api.server.tokenizer_id,
    }


def test_same_seed_same_tokens_and_resend_dedupes(api: Api) -> None:
    sampler_id = sampler(api)
    first = asample(api, sampler_id, 0)
    assert asample(api, sampler_id, 0)["request_id"] == first["request_id"]
    second = asample(api, sampler_id, 1)
    assert second["request_id"] != first["request_id"]

    def tokens(future: dict[str, Any]) -> list[list[int]]:
        return [s["tokens"] for s in api.result(future["request_id"])["sequences"]]

    assert tokens(first) == tokens(second)


@pytest.mark.parametrize(
    "stop",
    [None, [], "l", ["l", "zz"], [EOS_ID, 108]],
    ids=["omitted", "empty", "string", "strings", "token-ids"],
)
def test_stop_forms_are_accepted(api: Api, stop: Any) -> None:
    sampler_id = sampler(api, "tinkex/null")
    params: dict[str, Any] = {"max_tokens": 4, "seed": 1}
    if stop is not None:
        params["stop"] = stop
    future = asample(api, sampler_id, 0, params=params, num_samples=1)
    result = api.result(future["request_id"])
    assert len(result["sequences"]) == 1 and len(result["sequences"][0]["tokens"]) <= 4


def test_bad_sampling_input_is_400(api: Api) -> None:
    sampler_id = sampler(api)
    body = {"num_samples": 1, "prompt": PROMPT, "sampling_session_id": sampler_id, "seq_id": 0}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sampling_params": {"max_tokens": -3}}, "max_tokens"),
        ({"sampling_params": {"top_p": 0}}, "top_p"),
        ({"sampling_params": {"stop": [1.5]}}, "stop"),
        ({"sampling_params": {}, "num_samples": 0}, "num_samples"),
        ({"sampling_params": {}, "prompt": {"chunks": []}}, "prompt"),
        (
            {
                "sampling_params": {},
                "prompt": {"chunks": [{"tokens": [999], "type": "encoded_text"}]},
            },
            "999",
        ),
        ({"sampling_params": {"max_tokens": 10_000}}, "context length"),
    ]
    for extra, needle in cases:
        response = api.post("asample", {**body, **extra})
        assert response.status_code == 400, (extra, response.text)
        assert needle in response.json()["detail"], (extra, response.json())
    unknown = api.post(
        "asample", {**body, "sampling_params": {}, "sampling_session_id": "nope:sample:0"}
    )
    assert unknown.status_code == 400 and "nope:sample:0" in unknown.json()["detail"]


def test_prompt_logprobs_and_topk(api: Api) -> None:
    sampler_id = sampler(api)
    future = asample(
        api,
        sampler_id,
        0,
        num_samples=1,
        params={"max_tokens": 1},
        prompt_logprobs=True,
        topk_prompt_logprobs=3,
    )
    result = api.result(future["request_id"])
    logprobs = result["prompt_logprobs"]
    assert len(logprobs) == 3 and logprobs[0] is None
    assert all(lp is not None and lp <= 0 for lp in logprobs[1:])
    topk = result["topk_prompt_logprobs"]
    assert topk[0] is None and len(topk[1]) == 3
    assert topk[1][0][1] >= topk[1][1][1] >= topk[1][2][1]


def test_protobuf_result_when_accept_asks(api: Api) -> None:
    sampler_id = sampler(api)
    future = asample(api, sampler_id, 0, prompt_logprobs=True)
    raw = api.result(future["request_id"], accept="application/x-protobuf")
    assert isinstance(raw, bytes)
    decoded = _proto.decode_sample_response(raw)
    assert len(decoded.sequences) == 2
    assert decoded.prompt_logprobs is not None and decoded.prompt_logprobs[0] is None
    as_json = api.result(future["request_id"])
    assert [s["tokens"] for s in as_json["sequences"]] == [s.tokens for s in decoded.sequences]


def test_unnamed_sampler_snapshot_samples_trained_weights(api: Api) -> None:
    model_id = api.model("tinkex/tiny", rank=8)
    target = [72, 105, 33, 72, 105, 33]
    for step in range(30):
        example = datum([256, *target[:-1]], target)
        api.ok("forward_backward", fwdbwd(model_id, 2 * step + 1, [example]))
        api.ok("optim_step", optim(model_id, 2 * step + 2, lr=0.01))
    session = model_id.split(":")[0]
    saved = api.ok(
        "save_weights_for_sampler",
        {"model_id": model_id, "seq_id": 61, "sampling_session_seq_id": 5, "kind": "inflight"},
    )
    result = api.result(saved["request_id"])
    assert result["sampling_session_id"] == f"{session}:sample:5" and "path" not in result
    future = api.ok(
        "asample",
        {
            "num_samples": 1,
            "prompt": {"chunks": [{"tokens": [256], "type": "encoded_text"}]},
            "sampling_params": {"max_tokens": 6, "temperature": 0.0, "stop": []},
            "sampling_session_id": result["sampling_session_id"],
            "seq_id": 0,
        },
    )
    tokens = api.result(future["request_id"])["sequences"][0]["tokens"]
    assert tokens == target


def test_sampler_from_model_path(api: Api) -> None:
    model_id = api.model()
    named = api.ok("save_weights_for_sampler", {"model_id": model_id, "seq_id": 1, "path": "s1"})
    path = api.result(named["request_id"])["path"]
    assert path == f"tinker://{model_id}/sampler_weights/s1"
    session = api.session()
    created = api.ok(
        "create_sampling_session",
        {"session_id": session, "sampling_session_seq_id": 0, "model_path": path},
    )
    info = api.get(f"samplers/{created['sampling_session_id']}").json()
    assert info["base_model"] == "tinkex/tiny" and info["model_path"] == path
    future = asample(api, created["sampling_session_id"], 0)
    assert len(api.result(future["request_id"])["sequences"]) == 2
    missing = api.post(
        "create_sampling_session",
        {
            "session_id": session,
            "sampling_session_seq_id": 1,
            "model_path": f"tinker://{model_id}/sampler_weights/nope",
        },
    )
    assert missing.status_code == 404


def test_asample_without_sampling_session(api: Api) -> None:
    body = {
        "num_samples": 2,
        "prompt": PROMPT,
        "sampling_params": {"max_tokens": 3},
        "base_model": "tinkex/tiny",
    }
    future = api.ok("asample", body)
    assert len(api.result(future["request_id"])["sequences"]) == 2
    missing = api.post("asample", {**body, "base_model": None})
    assert missing.status_code == 400 and "base_model" in missing.json()["detail"]
