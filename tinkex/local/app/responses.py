"""Answers shared by several handler modules."""

from __future__ import annotations

from typing import Any

from tinkex.local.http import Response, json_response

__all__ = ["future_response"]


def future_response(request_id: str, model_id: str | None = None, **extra: Any) -> Response:
    """The ``UntypedAPIFuture`` answer of a submitted request (``x-request-id`` = its id)."""
    body: dict[str, Any] = {"request_id": request_id}
    if model_id is not None:
        body["model_id"] = model_id
    body.update(extra)
    return json_response(body, headers={"x-request-id": request_id})
