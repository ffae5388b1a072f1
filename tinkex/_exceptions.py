"""The tinkex exception hierarchy.

Class names, bases and the status-code mapping mirror the official ``tinker`` SDK, so
``except tinker.RateLimitError`` keeps working after ``import tinkex as tinker``. Messages
add what a user needs to act: the endpoint, the HTTP status and the server's request id.
Every class pickles (its constructor arguments are kept for ``__reduce__``).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "TinkerError",
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
    "RequestErrorCategory",
    "RetryableException",
    "ExperimentalWarning",
    "status_error_class",
    "make_status_error",
    "shorten_body",
]


class ExperimentalWarning(FutureWarning):
    """Warns that an API is experimental and may change without notice."""


class RequestErrorCategory(enum.StrEnum):
    """Who is to blame for a failed request, as reported by the server."""

    Unknown = "unknown"
    Server = "server"
    User = "user"


class TinkerError(Exception):
    """Base class of every error raised by tinkex."""


class APIError(TinkerError):
    """An error tied to one HTTP exchange with the Tinker API.

    Attributes:
        message: human-readable text (also ``str(exc)``).
        request: a short description of the request, e.g. ``"POST /api/v1/get_info"``.
        body: the decoded response body when there was one.
    """

    message: str
    request: str | None
    body: object | None

    def __init__(self, message: str, request: str | None = None, *, body: object | None = None):
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        state = self.__dict__.copy()
        if "response" in state:  # a raw HTTP response holds a socket: not pickled
            state["response"] = None
        return (_rebuild, (type(self), state))


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status.

    Attributes:
        status_code: the HTTP status.
        response: the raw response object when available (not pickled).
        request_id: the server's request id (``x-request-id`` header), if any.
    """

    status_code: int
    response: Any
    request_id: str | None

    def __init__(
        self,
        message: str,
        response: Any = None,
        body: object | None = None,
        *,
        status_code: int | None = None,
        request: str | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message, request, body=body)
        self.response = response
        resolved = status_code if status_code is not None else getattr(response, "status_code", 0)
        self.status_code = int(resolved or 0)
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key was rejected."""


class BillingError(APIStatusError):
    """HTTP 402: the account cannot be billed."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429."""


class InternalServerError(APIStatusError):
    """HTTP 5xx."""


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke mid-request."""

    def __init__(self, request: str | None = None, message: str = "Connection error."):
        super().__init__(message, request, body=None)


class APITimeoutError(APIConnectionError):
    """The request did not complete within its timeout."""

    def __init__(self, request: str | None = None, *, message: str = "Request timed out."):
        super().__init__(message=message, request=request)


class APIResponseValidationError(APIError):
    """The server's response did not match the expected schema."""

    status_code: int

    def __init__(
        self,
        response: Any = None,
        body: object | None = None,
        message: str | None = None,
        *,
        request: str | None = None,
        status_code: int | None = None,
    ):
        super().__init__(
            message or "Data returned by API invalid for expected schema.", request, body=body
        )
        self.response = response
        resolved = status_code if status_code is not None else getattr(response, "status_code", 200)
        self.status_code = int(resolved or 200)


class RequestFailedError(TinkerError):
    """A future finished in the failed state (``{"error", "category"}`` from the server)."""

    def __init__(
        self,
        message: str,
        request_id: str,
        category: RequestErrorCategory | str = RequestErrorCategory.Unknown,
    ):
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        try:
            self.category = RequestErrorCategory(category)
        except ValueError:
            self.category = RequestErrorCategory.Unknown

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.request_id, self.category))


class PollTimeoutError(TinkerError):
    """Polling a future ran past its deadline (``poll_timeout`` / ``TINKEX_POLL_TIMEOUT``, a
    tinkex extension); the request may still finish on the server. Neither an
    :class:`APIConnectionError` nor a ``TimeoutError``, which sampling retries would resubmit:
    the deadline ends the call."""


class RetryableException(TinkerError):
    """Internal: a future's result is gone (HTTP 410) and the request may be resubmitted."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _rebuild(cls: type[BaseException], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls)
    BaseException.__init__(exc, state.get("message", ""))
    exc.__dict__.update(state)
    return exc


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class the official SDK uses for an HTTP status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)


_BODY_LIMIT = 300


def shorten_body(body: object, limit: int = _BODY_LIMIT) -> object:
    """An error body fit for a one-line message: JSON values unchanged, text shortened.

    A body that is not JSON (an HTML error page from a proxy, a plain-text trace) loses its
    markup and repeated whitespace, and is cut at ``limit`` characters with a note saying how
    much was left out; the full body stays on the exception's ``body``.

    >>> shorten_body("<html><title>502 Bad Gateway</title><body>nginx</body></html>")
    '502 Bad Gateway nginx'
    """
    if not isinstance(body, str | bytes):
        return body
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if "<" in text and ">" in text:
        import re

        text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
        text = re.sub(r"(?s)<!--.*?-->|<[^>]*>", " ", text)
        text = text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">")
        text = text.replace("&amp;", "&")
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def make_status_error(
    status_code: int,
    body: object | None,
    *,
    request: str | None = None,
    request_id: str | None = None,
    response: Any = None,
) -> APIStatusError:
    """Build the right :class:`APIStatusError` subclass with a message that names the request.

    >>> str(make_status_error(404, {"detail": "no such model"}, request="POST /api/v1/get_info"))
    "Error code: 404 - {'detail': 'no such model'} [POST /api/v1/get_info]"
    """
    message = f"Error code: {status_code} - {shorten_body(body)}"
    context = ", ".join(
        part for part in (request, f"request id {request_id}" if request_id else None) if part
    )
    if context:
        message = f"{message} [{context}]"
    cls = status_error_class(status_code)
    return cls(
        message,
        response=response,
        body=body,
        status_code=status_code,
        request=request,
        request_id=request_id,
    )
