"""One line for every failure: what failed and, where it helps, what to do about it.

Used by ``tinkex.cli.main`` (every command's ``Error: ...`` line), by ``checkpoint delete``
(per-path failures) and by ``python -m tinkex.demo``. Bodies that are not JSON (HTML pages
from proxies, web servers) never reach the terminal whole: ``tinkex._exceptions.shorten_body``.
"""

from __future__ import annotations

import os
import urllib.parse

from tinkex.cli._context import CommandError

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def describe_error(exc: BaseException, base_url: str | None = None) -> str:
    """One line that says what failed and, where it helps, what to do about it.

    ``base_url`` is the server the command used (for connection errors that do not name it).
    """
    from tinkex._exceptions import (
        APIConnectionError,
        APIStatusError,
        AuthenticationError,
        RequestFailedError,
        TinkerError,
        shorten_body,
    )
    from tinkex._server_check import NotATinkerAPIError, connection_reason

    if isinstance(exc, CommandError | NotATinkerAPIError):
        return _one_line(str(exc))
    if isinstance(exc, AuthenticationError):
        return (
            f"the server rejected the API key (HTTP 401{_where(exc, ' on ')}); check "
            "TINKER_API_KEY or --api-key, or run 'tinkex auth login'"
        )
    if isinstance(exc, APIStatusError):
        detail = _detail(exc.body) or _one_line(str(shorten_body(exc.message)))
        return f"{detail} (HTTP {exc.status_code}{_where(exc, ', ')})"
    if isinstance(exc, APIConnectionError):
        url = base_url or os.environ.get("TINKER_BASE_URL") or "the default Tinker URL"
        message = _one_line(exc.message)
        if not message.startswith("cannot reach"):
            message = f"cannot reach the server at {url}: {connection_reason(exc)}"
        if "refused" in message.lower() and _is_loopback(url):
            message += " (start one with 'tinkex serve', or point TINKER_BASE_URL elsewhere)"
        return message
    if isinstance(exc, RequestFailedError):
        return f"request {exc.request_id} failed: {_one_line(exc.message)}"
    text = _one_line(str(exc))
    if isinstance(exc, TimeoutError):
        return f"timed out: {text}" if text else "timed out"
    if isinstance(exc, TinkerError | ValueError | TypeError | OSError | RuntimeError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_loopback(url: str) -> bool:
    return (urllib.parse.urlsplit(url).hostname or "") in _LOOPBACK


def _where(exc: BaseException, sep: str) -> str:
    request = getattr(exc, "request", None)
    return f"{sep}{request}" if request else ""


def _detail(body: object) -> str | None:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if detail:
            return _one_line(str(detail))
    return None
