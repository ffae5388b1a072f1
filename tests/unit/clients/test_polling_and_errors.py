"""Future polling through the clients and error mapping of direct calls."""

from __future__ import annotations

from typing import Any

import pytest

import tinkex
from tinkex import types

from .conftest import API_KEY, BASE_URL, MODEL_ID, FakeTinker, datum


def test_try_again_then_result(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    fake.script_future(
        "req-2",
        (200, {"type": "try_again", "request_id": "req-2", "queue_state": "active"}),
        (200, {"type": "try_again", "request_id": "req-2", "queue_state": "paused_capacity"}),
        (200, {"metrics": {"grad_norm:mean": 2.0}}),
    )
    response = training.optim_step(types.AdamParams()).result(timeout=10)
    assert response.metrics == {"grad_norm:mean": 2.0}
    polls = [
        c for c in fake.requests_to("/api/v1/retrieve_future") if c.json["request_id"] == "req-2"
    ]
    assert [p.headers["X-Tinker-Request-Iteration"] for p in polls] == ["0", "1", "2"]
    assert all(p.json == {"request_id": "req-2", "allow_metadata_only": True} for p in polls)
    assert "X-Tinker-Create-Promise-Roundtrip-Time" in polls[0].headers
    assert "X-Tinker-Create-Promise-Roundtrip-Time" not in polls[1].headers
    # The polls of a public method's future report that method, as the official SDK's do.
    assert all(p.headers["x-sdk-method"] == "TrainingClient.optim_step" for p in polls)
    assert all(p.headers["x-sdk-version"] == "0.38.0" for p in polls)
    assert all(p.headers["X-Stainless-Raw-Response"] == "raw" for p in polls)


def test_complete_metadata_then_payload(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    fake.script_future(
        "req-2",
        (200, {"status": "complete_metadata", "response_payload_size": 100}),
        (200, {"metrics": None}),
    )
    assert training.optim_step(types.AdamParams()).result(timeout=10).metrics is None
    polls = [
        c for c in fake.requests_to("/api/v1/retrieve_future") if c.json["request_id"] == "req-2"
    ]
    assert [p.json["allow_metadata_only"] for p in polls] == [True, False]


def test_poll_server_errors_are_repolled(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    fake.script_future(
        "req-2",
        (500, {"detail": "oops"}),
        (408, {"queue_state": "active"}),
        (200, {"metrics": {}}),
    )
    assert training.optim_step(types.AdamParams()).result(timeout=10).metrics == {}


@pytest.mark.parametrize(
    ("category", "expected"), [("user", "user"), ("server", "server"), ("weird", "unknown")]
)
def test_failed_future(
    fake: FakeTinker, training: tinkex.TrainingClient, category: str, expected: str
) -> None:
    fake.script_future("req-2", (200, {"error": "optimizer exploded", "category": category}))
    with pytest.raises(tinkex.RequestFailedError) as info:
        training.optim_step(types.AdamParams()).result(timeout=10)
    assert "optimizer exploded" in str(info.value)
    assert info.value.request_id == "req-2"
    assert str(info.value.category) == expected


def test_fatal_poll_status_is_a_value_error(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    fake.script_future("req-2", (403, {"detail": "not yours"}))
    with pytest.raises(ValueError, match="Error retrieving result") as info:
        training.optim_step(types.AdamParams()).result(timeout=10)
    assert "req-2" in str(info.value)
    assert "403" in str(info.value)


def _create(fake: FakeTinker) -> tinkex.ServiceClient:
    return tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY)


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, tinkex.BadRequestError),
        (401, tinkex.AuthenticationError),
        (403, tinkex.PermissionDeniedError),
        (404, tinkex.NotFoundError),
        (422, tinkex.UnprocessableEntityError),
    ],
)
def test_direct_call_errors_are_not_retried(
    fake: FakeTinker, status: int, exc_type: type[tinkex.APIStatusError]
) -> None:
    fake.reply("POST", "/api/v1/get_info", (status, {"detail": "no"}, {"x-request-id": "rid-7"}))
    with _create(fake) as service:
        future = service.create_lora_training_client("tiny-base")
        with pytest.raises(exc_type) as info:
            future.result(timeout=10)
    exc = info.value
    assert exc.status_code == status
    assert exc.request == "POST /api/v1/get_info"
    assert exc.request_id == "rid-7"
    assert exc.body == {"detail": "no"}
    assert "POST /api/v1/get_info" in str(exc)
    assert len(fake.requests_to("/api/v1/get_info")) == 1


def test_server_error_after_retries(fake: FakeTinker) -> None:
    fake.reply("POST", "/api/v1/get_info", (500, {"detail": "down"}))
    with _create(fake) as service:
        future = service.create_lora_training_client("tiny-base")
        with pytest.raises(tinkex.InternalServerError) as info:
            future.result(timeout=30)
    assert info.value.status_code == 500
    assert info.value.request == "POST /api/v1/get_info"
    # layer 1 (11 HTTP attempts) inside layer 2 (3 attempts with the test's holder policy)
    assert len(fake.requests_to("/api/v1/get_info")) == 3 * 11
    calls = fake.requests_to("/api/v1/get_info")
    assert [c.headers["x-stainless-retry-count"] for c in calls[:11]] == [str(i) for i in range(11)]
    keys = {c.headers["X-Idempotency-Key"] for c in calls}
    assert len(keys) == 3  # one idempotency key per layer-1 call, reused across its retries


def test_missing_config_aborts_client_creation(fake: FakeTinker) -> None:
    fake.reply("POST", "/api/v1/client/config", (404, {"detail": "Not Found"}))
    with _create(fake) as service, pytest.raises(tinkex.NotFoundError):
        service.create_lora_training_client("tiny-base").result(timeout=10)
    assert fake.requests_to("/api/v1/create_session") == []


def test_malformed_response_is_a_validation_error(fake: FakeTinker) -> None:
    fake.reply("POST", "/api/v1/get_info", (200, {"type": "get_info"}))  # no model_id
    with (
        _create(fake) as service,
        pytest.raises(tinkex.APIResponseValidationError, match="model_id"),
    ):
        service.create_lora_training_client("tiny-base").result(timeout=10)


def test_failed_finish_makes_close_future_fail(fake: FakeTinker) -> None:
    fake.reply("POST", "/api/v1/sessions/sess-1/finish", (404, {"detail": "no session"}))
    service = _create(fake)
    service.create_lora_training_client("tiny-base").result(timeout=10)
    with pytest.raises(tinkex.NotFoundError):
        service.close().result(timeout=10)


def test_retryable_submission_error_then_success(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    fake.reply("POST", "/api/v1/forward_backward", (503, {"detail": "busy"}), None)
    out = training.forward_backward([datum([1, 2])], "cross_entropy").result(timeout=10)
    assert out.metrics == {"loss:sum": 1.0}
    calls = fake.requests_to("/api/v1/forward_backward")
    assert [c.json["seq_id"] for c in calls] == [1, 1]  # a resend keeps its seq_id
    assert calls[0].headers["X-Idempotency-Key"] == calls[1].headers["X-Idempotency-Key"]
    assert calls[0].json["model_id"] == MODEL_ID


def test_create_model_is_retried_by_the_http_layer_only(fake: FakeTinker) -> None:
    fake.reply("POST", "/api/v1/create_model", (500, {"detail": "down"}))
    with _create(fake) as service:
        future = service.create_lora_training_client("tiny-base")
        with pytest.raises(tinkex.InternalServerError):
            future.result(timeout=30)
    assert len(fake.requests_to("/api/v1/create_model")) == 11  # 1 + max_retries, no outer loop


# -- issue 10.7: errors name the endpoint, the status, what was expected and what to do ---------


@pytest.mark.parametrize(
    ("result", "what"),
    [
        ((200, b""), "an empty body"),
        ((200, ["model_id"]), "a JSON list"),
        ((200, {"type": "create_model"}), "a result it could not use (invalid CreateModelResponse"),
    ],
    ids=["empty-body", "not-an-object", "wrong-shape"],
)
def test_an_unusable_result_names_the_request_and_what_to_do(
    fake: FakeTinker, result: Any, what: str
) -> None:
    fake.reply("POST", "/api/v1/create_model", (200, {"request_id": "req-x", "model_id": MODEL_ID}))
    fake.script_future("req-x", result)
    with (
        _create(fake) as service,
        pytest.raises(tinkex.APIResponseValidationError) as info,
    ):
        service.create_lora_training_client("tiny-base").result(timeout=10)
    message = str(info.value)
    assert "POST /api/v1/retrieve_future" in message
    assert "request_id='req-x' (CreateModel)" in message
    assert "answered 200 with " + what in message, message
    assert "expected a JSON object" in message
    assert f"{BASE_URL} does not answer as a Tinker API" in message
    assert "argument of type 'NoneType'" not in message
