"""tinkex's errors pickle (futures carry them to other processes): every attribute survives
except the raw HTTP response object, which is left behind (it holds a socket)."""

from __future__ import annotations

import pickle
import threading

import pytest

from tinkex._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    NotFoundError,
    RateLimitError,
    RequestFailedError,
)


class Unpicklable:
    """Stands in for a live HTTP response: pickling it fails."""

    status_code = 429
    lock = threading.Lock()


def test_a_status_error_keeps_its_fields_and_leaves_the_response_behind() -> None:
    error = RateLimitError(
        "slow down", Unpicklable(), {"detail": "x"}, request="POST /api/v1/asample", request_id="r1"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimitError
    assert (copy.message, copy.status_code, copy.body) == ("slow down", 429, {"detail": "x"})
    assert (copy.request, copy.request_id, copy.response) == ("POST /api/v1/asample", "r1", None)
    assert str(copy) == "slow down"
    assert error.response is not None  # the original keeps it


def test_a_validation_error_keeps_its_fields_and_leaves_the_response_behind() -> None:
    error = APIResponseValidationError(Unpicklable(), {"a": 1}, "bad shape", request="GET /x")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.status_code, copy.body, copy.request) == (
        "bad shape",
        429,
        {"a": 1},
        "GET /x",
    )
    assert copy.response is None


@pytest.mark.parametrize(
    "error",
    [
        APIError("plain", "GET /y", body=[1]),
        APIConnectionError("POST /z"),
        APITimeoutError("POST /z"),
        NotFoundError("gone", None, None, status_code=404),
        RequestFailedError("failed", "req-7", "user"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_round_trip_unchanged(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
