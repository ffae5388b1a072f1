"""Exception constructors accept the official SDK's positional arguments, in its order."""

from __future__ import annotations

import inspect

import pytest

import tinkex

tinker = pytest.importorskip("tinker")

NAMES = [
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "BillingError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "RequestFailedError",
]


def _positional(cls: type) -> list[str]:
    return [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_positional_parameters_start_like_the_official_ones(name: str) -> None:
    official = _positional(getattr(tinker, name))
    ours = _positional(getattr(tinkex, name))
    assert ours[: len(official)] == official


def test_status_error_built_positionally_keeps_status_and_body() -> None:
    class FakeResponse:
        status_code = 404

    exc = tinkex.NotFoundError("Error code: 404", FakeResponse(), {"detail": "nope"})
    assert exc.status_code == 404 and exc.body == {"detail": "nope"}
    conn = tinkex.APIConnectionError("POST /api/v1/x")
    assert conn.request == "POST /api/v1/x" and conn.message == "Connection error."
