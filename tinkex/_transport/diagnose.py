"""What went wrong with a request, in words, and whether retrying can help.

The transports ask :func:`connection_failure` about every exception that left a request without
an answer and
:func:`not_a_tinker_api` about every error answer, so that

* failures retrying cannot fix fail at once with a message that says what to change
  (:class:`PermanentConnectionError`: the host name does not resolve, TLS spoken to a
  plain-HTTP server; ``tinkex._server_check.NotATinkerAPIError``: the URL answers, but not as
  a Tinker API);
* failures that retries may fix are named in the retry warnings (:func:`failure_reason`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._exceptions import APIConnectionError, APIStatusError, APITimeoutError

if TYPE_CHECKING:
    from tinkex._server_check import NotATinkerAPIError

__all__ = [
    "PermanentConnectionError",
    "connection_failure",
    "failure_reason",
    "not_a_tinker_api",
]

#: Statuses a web server that is not a Tinker API answers to ``POST /api/v1/...``.
_NOT_AN_ENDPOINT = (405, 501)


class PermanentConnectionError(APIConnectionError):
    """The server cannot be reached in a way that retrying cannot fix (never retried)."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def connection_failure(exc: BaseException, base_url: str, label: str) -> APIConnectionError:
    """The tinkex error for an exception that left ``label`` without an answer (a
    ``requests`` one, or the socket/TLS error of the asyncio transport; no timeouts here)."""
    import socket
    import ssl

    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolutionError" in names:
        return PermanentConnectionError(
            message=f"Cannot resolve the host of {base_url} ({label}): check base_url (or "
            "TINKER_BASE_URL) for typos; the name does not exist in DNS.",
            request=label,
        )
    if any(isinstance(e, ssl.SSLError) for e in chain) and "WRONG_VERSION_NUMBER" in text:
        plain = "http://" + base_url.split("://", 1)[-1]
        return PermanentConnectionError(
            message=f"TLS handshake with {base_url} failed ({label}): the server speaks plain "
            f"HTTP, not HTTPS. Use {plain} as base_url (or TINKER_BASE_URL).",
            request=label,
        )
    return APIConnectionError(
        message=f"Connection error on {label}: {failure_reason(exc)} ({type(exc).__name__})",
        request=label,
    )


def not_a_tinker_api(
    status: int, content_type: str, body: bytes, base_url: str, label: str
) -> NotATinkerAPIError | None:
    """A ``tinkex._server_check.NotATinkerAPIError`` (never retried) when an error answer
    comes from some other web server: an HTML 405 or 501 (Python's ``http.server`` answers a
    POST so, and 501 is a 5xx that retry loops would otherwise spin on for minutes). An HTML
    404 stays a ``NotFoundError`` (it is not retried either)."""
    from tinkex._server_check import NotATinkerAPIError

    if status not in _NOT_AN_ENDPOINT or "html" not in content_type.lower():
        return None
    kind = content_type.split(";", 1)[0].strip()
    return NotATinkerAPIError(
        base_url,
        status,
        kind,
        body=body.decode("utf-8", errors="replace"),
        hint=f"{label} was answered by another kind of web server. Check base_url (or "
        "TINKER_BASE_URL): it must be the Tinker service's URL, or http://127.0.0.1:PORT "
        "of `tinkex serve`",
        request=label,
    )


def failure_reason(exc: BaseException) -> str:
    """A few words for why a request failed: "connection refused", "HTTP 503", ..."""
    if isinstance(exc, APITimeoutError):
        return "timed out"
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}"
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if type(cause).__name__ == "RemoteDisconnected":
            return "the server closed the connection without answering"
    last = _chain(exc)[-1]
    return str(last) or type(last).__name__
