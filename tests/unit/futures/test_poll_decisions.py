"""next_action: the retrieve_future decision table, one test per row (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RequestErrorCategory,
    RequestFailedError,
    RetryableException,
    make_status_error,
)
from tinkex._futures import QueueState
from tinkex._poll_table import Fail, Finish, PollAction, PollState, Repoll, next_action
from tinkex._transport import Response
from tinkex._transport.retry import RetryState, poll_retry_policy

POLICY = poll_retry_policy(60.0)


def decide(answer: Any, state: PollState | None = None, now: float = 0.0) -> PollAction:
    return next_action(
        state or PollState(),
        answer,
        now=now,
        policy=POLICY,
        request_id="req-1",
        request_type="OptimStep",
    )


def ok(
    body: Any = None, content_type: str = "application/json", raw: bytes | None = None
) -> Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return Response(200, {"content-type": content_type}, content, request="POST /x")


def status(code: int, body: Any = None) -> APIStatusError:
    return make_status_error(code, body if body is not None else {"detail": "x"}, request="POST /x")


BACKED_OFF = PollState(iteration=4, backoff=RetryState(retries=3))


# ---- 200 rows -------------------------------------------------------------------------------


def test_protobuf_payload_is_decoded() -> None:
    answer = ok(content_type="application/x-protobuf", raw=b"\x0a\x00")
    assert decide(answer) == Finish(answer)


def test_try_again_repolls_at_once_and_reports_the_queue_state() -> None:
    body = {"type": "try_again", "queue_state": "paused_capacity", "queue_state_reason": "busy"}
    action = decide(ok(body), BACKED_OFF)
    assert action == Repoll(
        PollState(iteration=5), queue_state=(QueueState.PAUSED_CAPACITY, "busy")
    )
    assert decide(ok({"type": "try_again"})) == Repoll(PollState(iteration=1))
    weird = decide(ok({"type": "try_again", "queue_state": "weird"}))
    assert isinstance(weird, Repoll) and weird.queue_state == (QueueState.UNKNOWN, None)


def test_complete_metadata_reserves_the_payload_and_asks_for_it() -> None:
    body = {"status": "complete_metadata", "response_payload_size": 700}
    action = decide(ok(body))
    assert action == Repoll(PollState(iteration=1, allow_metadata_only=False), reserve=700)
    twice = decide(ok(body), PollState(iteration=1, allow_metadata_only=False))
    assert isinstance(twice, Fail) and isinstance(twice.error, ValueError)
    assert "complete_metadata twice for request_id='req-1' (OptimStep)" in str(twice.error)


@pytest.mark.parametrize(
    ("category", "expected"),
    [("user", RequestErrorCategory.User), (None, RequestErrorCategory.Unknown)],
)
def test_error_body_fails_with_request_failed(category: Any, expected: Any) -> None:
    body: dict[str, Any] = {"error": "loss exploded"}
    if category is not None:
        body["category"] = category
    action = decide(ok(body))
    assert isinstance(action, Fail) and isinstance(action.error, RequestFailedError)
    assert action.error.category is expected and action.error.request_id == "req-1"
    assert (action.outcome, action.queue_state) == ("failed", (QueueState.ACTIVE, None))


@pytest.mark.parametrize("body", [{"type": "optim_step", "metrics": {}}, [1, 2], None])
def test_other_json_is_decoded(body: Any) -> None:
    answer = ok(body)
    assert decide(answer) == Finish(answer)


# ---- HTTP status rows ---------------------------------------------------------------------


def test_408_repolls_at_once_restarts_the_400_count_and_reports_its_queue_state() -> None:
    state = PollState(iteration=2, bad_requests=2, backoff=RetryState(retries=1))
    action = decide(status(408, {"type": "try_again", "queue_state": "paused_rate_limit"}), state)
    assert action == Repoll(
        PollState(iteration=3), queue_state=(QueueState.PAUSED_RATE_LIMIT, None)
    )


@pytest.mark.parametrize("code", [500, 503, 599])
def test_5xx_repolls_at_once_and_resets_the_backoff(code: int) -> None:
    assert decide(status(code), BACKED_OFF) == Repoll(PollState(iteration=5))


def test_429_backs_off_exponentially() -> None:
    first = decide(status(429))
    assert first == Repoll(PollState(iteration=1, backoff=RetryState(retries=1)), delay=1.0)
    assert isinstance(first, Repoll)
    second = decide(status(429), first.state)
    assert isinstance(second, Repoll) and second.delay == 2.0
    capped = decide(status(429), PollState(backoff=RetryState(retries=9)))
    assert isinstance(capped, Repoll) and capped.delay == 30.0


def test_400_repolls_three_times_then_fails() -> None:
    state = PollState()
    for n in range(1, 4):
        action = decide(status(400), state)
        assert isinstance(action, Repoll) and action.delay is None
        assert action.state.bad_requests == n
        state = action.state
    failed = decide(status(400), state)
    assert isinstance(failed, Fail) and isinstance(failed.error, ValueError)
    assert "status 400) for request_id='req-1' (OptimStep) — exceeded 3 retries" in str(
        failed.error
    )
    assert isinstance(failed.cause, APIStatusError)


def test_402_pauses_within_the_billing_window_then_fails() -> None:
    first = decide(status(402), now=0.0)
    assert first == Repoll(PollState(iteration=1, backoff=RetryState(billing_since=0.0)), delay=5.0)
    assert isinstance(first, Repoll)
    failed = decide(status(402), first.state, now=60.0)
    assert isinstance(failed, Fail)
    assert "with status 402 for request_id='req-1' (OptimStep)" in str(failed.error)


def test_402_keeps_the_429_exponent() -> None:
    action = decide(status(402), PollState(backoff=RetryState(retries=2)))
    assert isinstance(action, Repoll) and action.state.backoff.retries == 2


def test_410_fails_with_retryable_exception() -> None:
    action = decide(status(410))
    assert isinstance(action, Fail) and isinstance(action.error, RetryableException)
    assert "request_id='req-1'" in str(action.error)


@pytest.mark.parametrize("code", [401, 403, 404, 409, 422])
def test_other_4xx_fail_naming_request_and_status(code: int) -> None:
    action = decide(status(code))
    assert isinstance(action, Fail) and isinstance(action.error, ValueError)
    assert f"with status {code} for request_id='req-1' (OptimStep)" in str(action.error)


@pytest.mark.parametrize("exc", [APIConnectionError("POST /x"), APITimeoutError("POST /x")])
def test_connection_errors_back_off_and_any_answer_resets(exc: APIConnectionError) -> None:
    first = decide(exc)
    assert isinstance(first, Repoll) and first.delay == 1.0
    second = decide(exc, first.state)
    assert isinstance(second, Repoll) and second.delay == 2.0
    after_answer = decide(ok({"type": "try_again"}), second.state)
    assert isinstance(after_answer, Repoll) and after_answer.state.backoff == RetryState()


def test_the_decision_is_pure() -> None:
    state = PollState(iteration=3, bad_requests=1)
    answer = status(429)
    assert decide(answer, state) == decide(answer, state)
    assert state == PollState(iteration=3, bad_requests=1)


def test_no_answer_for_the_unreachable_limit_fails_naming_the_request() -> None:
    """A poller that gets no HTTP answer at all does not retry forever (the official SDK
    does): after UNREACHABLE_LIMIT seconds of connection errors in a row it fails."""
    from tinkex._poll_table import UNREACHABLE_LIMIT

    down = APIConnectionError("POST /api/v1/retrieve_future", message="connection refused")
    first = decide(down, now=100.0)
    assert isinstance(first, Repoll) and first.state.unreachable_since == 100.0
    still = decide(down, first.state, now=100.0 + UNREACHABLE_LIMIT - 1)
    assert isinstance(still, Repoll)
    # any HTTP answer (even an error) shows the server is there: the clock starts again
    answered = decide(status(503), still.state, now=100.0 + UNREACHABLE_LIMIT - 0.5)
    assert isinstance(answered, Repoll) and answered.state.unreachable_since is None
    again = decide(down, answered.state, now=100.0 + UNREACHABLE_LIMIT)
    assert isinstance(again, Repoll)
    gone = decide(down, again.state, now=100.0 + 2 * UNREACHABLE_LIMIT)
    assert isinstance(gone, Fail) and isinstance(gone.error, APIConnectionError)
    message = str(gone.error)
    assert f"no answer from the server for {UNREACHABLE_LIMIT:.0f} s" in message
    assert "request_id='req-1' (OptimStep)" in message and "connection refused" in message
    assert "TINKER_BASE_URL" in message
