"""The session futures poller's table for failed polls (``after_error``), row by row."""

from __future__ import annotations

import pytest

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    make_status_error,
)
from tinkex.clients._session_poller import (
    BILLING_WAIT,
    RETRY_WAIT,
    FallBack,
    PollErrors,
    Retry,
    after_error,
)

POLL = "POST /api/v1/retrieve_futures"


def status(code: int) -> APIStatusError:
    return make_status_error(code, {"detail": f"status {code}"}, request=POLL)


@pytest.mark.parametrize("code", [404, 405])
def test_no_endpoint_falls_back(code: int) -> None:
    action = after_error(status(code), PollErrors(), now=0.0)
    assert isinstance(action, FallBack) and f"HTTP {code}" in action.reason


@pytest.mark.parametrize("code", [408, 409, 429, 500, 503])
def test_transient_statuses_wait_a_second(code: int) -> None:
    errors = PollErrors(bad_requests=2, unreachable_since=1.0, paused_since=1.0)
    action = after_error(status(code), errors, now=5.0)
    assert action == Retry(PollErrors(), RETRY_WAIT)


def test_connection_errors_wait_until_the_unreachable_limit() -> None:
    first = after_error(APITimeoutError(POLL), PollErrors(), now=10.0)
    assert first == Retry(PollErrors(unreachable_since=10.0), RETRY_WAIT)
    assert isinstance(first, Retry)
    later = after_error(APIConnectionError(POLL), first.errors, now=200.0)
    assert later == Retry(PollErrors(unreachable_since=10.0), RETRY_WAIT)
    gone = after_error(APIConnectionError(POLL), first.errors, now=310.0)
    assert isinstance(gone, FallBack) and "no answer for 300 s" in gone.reason


def test_bare_400_is_retried_three_times() -> None:
    errors = PollErrors()
    for count in (1, 2, 3):
        action = after_error(status(400), errors, now=0.0)
        assert isinstance(action, Retry) and action.errors.bad_requests == count
        errors = action.errors
    assert isinstance(after_error(status(400), errors, now=0.0), FallBack)


def test_billing_pauses_for_the_allowance() -> None:
    first = after_error(status(402), PollErrors(), now=100.0, billing_max_pause=60)
    assert first == Retry(PollErrors(paused_since=100.0), BILLING_WAIT)
    assert isinstance(first, Retry)
    still = after_error(status(402), first.errors, now=150.0, billing_max_pause=60)
    assert isinstance(still, Retry)
    over = after_error(status(402), first.errors, now=161.0, billing_max_pause=60)
    assert isinstance(over, FallBack) and "402" in over.reason


@pytest.mark.parametrize("code", [401, 403, 410, 422])
def test_other_client_errors_fall_back(code: int) -> None:
    assert isinstance(after_error(status(code), PollErrors(), now=0.0), FallBack)
