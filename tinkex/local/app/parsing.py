"""Request bodies -> SDK request types, through the SDK's own converter (``from_wire``).

A handler says which type its body is (``parse(call, types.CreateModelRequest)``); the types'
validators check every field, and a failure is a 400 that names the request, the field path
and the validator's message. The server is more lenient than the SDK types in a few places
(fields the official clients always send but the local server never needed); those defaults
are listed where the handler parses (``defaults=...``), not hidden in a second validator.

Endpoints the SDK has no request type for get a small attrs type here, structured by the same
converter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from tinkex._exceptions import APIResponseValidationError
from tinkex.local.app.routing import Call
from tinkex.local.codec import BodyTooLargeError, CodecError, decode_body, load_json
from tinkex.local.http import HTTPError
from tinkex.types import ClientSessionFinishReason, ClientSessionFinishSuccess
from tinkex.types._converter import from_wire

__all__ = [
    "CancelFutureBody",
    "CheckpointTtlBody",
    "SequencedBody",
    "SessionFinishBody",
    "SessionProjectBody",
    "TelemetryBody",
    "WeightsInfoBody",
    "checkpoint_name",
    "json_body",
    "limit_offset",
    "parse",
    "short",
    "structure",
]

T = TypeVar("T")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (for error messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_body(call: Call) -> dict[str, Any]:
    """The request's JSON object (``Content-Encoding`` undone, size limit applied)."""
    request = call.request
    try:
        raw = decode_body(
            request.body, request.header("content-encoding"), call.state.options.max_body_bytes
        )
        body = load_json(raw)
    except BodyTooLargeError as exc:
        raise HTTPError(413, str(exc)) from None
    except CodecError as exc:
        raise HTTPError(400, str(exc)) from None
    if not isinstance(body, dict):
        raise HTTPError(400, f"request body must be a JSON object, got {short(body)}")
    return body


def parse(
    call: Call,
    cls: type[T],
    *,
    body: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """The request body (or ``body``) as ``cls``; ``defaults`` fill absent or null fields.

    Raises:
        HTTPError: 400 naming the request, the field and what is wrong with it.
    """
    data = dict(json_body(call) if body is None else body)
    for key, value in (defaults or {}).items():
        if data.get(key) is None:
            data[key] = value
    return structure(data, cls, call.endpoint)


def structure(data: Any, cls: type[T], where: str) -> T:
    """``data`` as ``cls`` via the SDK converter; ``where`` names the request or the field.

    Raises:
        HTTPError: 400 naming ``where``, the field path and the validator's message.
    """
    try:
        return from_wire(data, cls, request=where)
    except APIResponseValidationError as exc:
        raise HTTPError(400, _validation_detail(exc)) from None


def _validation_detail(exc: APIResponseValidationError) -> str:
    """The converter's message plus the validators' own messages (which name the value)."""
    causes = _leaf_messages(exc.__cause__)
    detail = str(exc)
    extra = [m for m in causes if m and m not in detail]
    return f"{detail} ({'; '.join(extra)})" if extra else detail


def _leaf_messages(exc: BaseException | None) -> list[str]:
    if exc is None:
        return []
    group = getattr(exc, "exceptions", None)
    if isinstance(group, (list, tuple)):
        return [m for sub in group for m in _leaf_messages(sub)]
    return [str(exc)]


def checkpoint_name(value: str, field: str = "path") -> str:
    """``value`` if it is a valid checkpoint name, else 400 naming ``field``."""
    if not _NAME_RE.match(value):
        raise HTTPError(
            400,
            f"field {field!r} must be a checkpoint name of 1-255 characters [A-Za-z0-9_.-], "
            f"got {short(value)}",
        )
    return value


def limit_offset(query: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    """``limit``/``offset`` query parameters (400 if not non-negative ints)."""
    try:
        limit = int(query.get("limit", default_limit))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise HTTPError(
            400, f"query parameters limit/offset must be ints, got {dict(query)!r}"
        ) from None
    if limit < 0 or offset < 0:
        raise HTTPError(400, f"limit and offset must be >= 0, got limit={limit} offset={offset}")
    return limit, offset


# --- bodies the SDK has no request type for ----------------------------------------------------


@attrs.frozen(kw_only=True)
class SequencedBody:
    """The part of a training request that places it in its model's queue."""

    model_id: str
    seq_id: int | None = None


@attrs.frozen(kw_only=True)
class SessionFinishBody:
    """Body of ``POST /api/v1/sessions/{id}/finish``."""

    reason: ClientSessionFinishReason = attrs.field(factory=ClientSessionFinishSuccess)
    detail: str | None = None


@attrs.frozen(kw_only=True)
class SessionProjectBody:
    """Body of ``PUT /api/v1/sessions/{id}/project``."""

    project_id: str | None = None


@attrs.frozen(kw_only=True)
class TelemetryBody:
    """Body of ``POST /api/v1/telemetry`` (events are kept as sent)."""

    events: list[dict[str, Any]] = attrs.field(factory=list)
    session_id: str | None = None


@attrs.frozen(kw_only=True)
class CancelFutureBody:
    """Body of ``POST /api/v1/cancel_future``."""

    request_id: str | None = None


@attrs.frozen(kw_only=True)
class CheckpointTtlBody:
    """Body of ``PUT .../checkpoints/{kind}/{name}/ttl`` (null: never expires)."""

    ttl_seconds: int | None = attrs.field(default=None)

    @ttl_seconds.validator
    def _positive(self, attribute: Any, value: int | None) -> None:
        if value is not None and value <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {value}")


@attrs.frozen(kw_only=True)
class WeightsInfoBody:
    """Body of ``POST /api/v1/weights_info``."""

    tinker_path: str
