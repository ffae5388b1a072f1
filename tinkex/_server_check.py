"""A fast answer to "is there a Tinker API at this URL, and will it talk to me?".

The SDK's own requests retry for minutes (wire protocol §13), which is right for a training
loop and wrong for a first contact: a stale ``TINKER_BASE_URL`` pointing at a web server, a
typo'd port, or ``https://`` in front of a plain-HTTP local server should fail in seconds with
a message that says what is there instead. :func:`check_server` sends the request every Tinker
client starts with (``POST /api/v1/client/config``) once, with short timeouts and a couple of
quick retries for transient failures only, and classifies the answer:

======================================  ==================================================
answer                                  result
======================================  ==================================================
2xx with a JSON object                  returned (the server's client config)
3xx                                     :class:`NotATinkerAPIError` naming the ``Location``
404 / 405 / 501, or any non-JSON body   :class:`NotATinkerAPIError` ("got 501 text/html")
other 4xx with JSON (401, 402, 403...)  the SDK's status error (``AuthenticationError``...)
429 / 5xx with JSON                     retried briefly, then the SDK's status error
no connection, TLS failure, timeout     :class:`~tinkex.APIConnectionError` naming the
                                        reason, with an http/https hint when it fits
======================================  ==================================================

The CLI (every command that talks to a server), ``python -m tinkex.demo`` and ``tinkex
doctor`` use it; clients may call it before their first request.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from tinkex._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    make_status_error,
    shorten_body,
)

if TYPE_CHECKING:
    from tinkex._config import ClientSettings

__all__ = ["NotATinkerAPIError", "check_server", "CONFIG_PATH"]

CONFIG_PATH = "/api/v1/client/config"
#: Seconds to open a TCP connection (and finish a TLS handshake) and to wait for the answer.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
#: Transient failures (refused/reset connections, 429/5xx JSON answers) are retried while
#: less than this many seconds have passed, so the whole check stays well under 5 s.
RETRY_BUDGET = 1.0
_RETRY_DELAY = 0.25
_NOT_AN_ENDPOINT = (404, 405, 501)


class NotATinkerAPIError(APIError):
    """The URL answered, but not the way a Tinker API does.

    Attributes:
        base_url: the URL that was checked.
        status_code: the HTTP status of the answer.
        content_type: its ``Content-Type`` (without parameters), ``""`` when absent.
    """

    base_url: str
    status_code: int
    content_type: str

    def __init__(
        self,
        base_url: str,
        status_code: int,
        content_type: str,
        *,
        body: object | None = None,
        hint: str | None = None,
        request: str = f"POST {CONFIG_PATH}",
    ) -> None:
        got = f"{status_code} {content_type or 'without a content type'}"
        message = f"{base_url}: this is not a Tinker API (got {got})"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(message, request, body=body)
        self.base_url = base_url
        self.status_code = status_code
        self.content_type = content_type


def check_server(settings: ClientSettings, *, sdk_version: str | None = None) -> dict[str, Any]:
    """Send one ``POST /api/v1/client/config`` to ``settings.base_url`` and classify the answer.

    Returns:
        The server's client config (a JSON object).

    Raises:
        NotATinkerAPIError: something else answers at that URL (see the module docstring).
        APIConnectionError: nobody answers (refused, DNS, TLS, timeout); the message names the
            URL, the reason and, for a scheme mismatch, the URL to use instead.
        APIStatusError: a Tinker API answered with an error (a rejected key, billing, 5xx).
    """
    import requests

    from tinkex._version import TINKER_SDK_VERSION, __version__

    base_url = settings.base_url.rstrip("/")
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"tinkex/{__version__}",
        **settings.access_headers,
        **settings.default_headers,
    }
    if settings.api_key:
        headers["X-API-Key"] = settings.api_key
    body = json.dumps({"sdk_version": sdk_version or TINKER_SDK_VERSION}).encode()
    start = time.monotonic()
    while True:
        try:
            response = requests.post(
                base_url + CONFIG_PATH,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            transient = isinstance(exc, requests.ConnectionError) and not isinstance(
                exc, requests.Timeout | requests.exceptions.SSLError
            )
            if transient and time.monotonic() - start < RETRY_BUDGET:
                time.sleep(_RETRY_DELAY)
                continue
            raise _connection_error(base_url, exc) from None
        with response:
            result = _classify(base_url, response)
        if result is not None:
            return result
        if time.monotonic() - start >= RETRY_BUDGET:
            raise _status_error(response)
        time.sleep(_RETRY_DELAY)


def _classify(base_url: str, response: Any) -> dict[str, Any] | None:
    """The config, or None for "retry" (429/5xx with JSON); raises for every other answer."""
    status = int(response.status_code)
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        target = urllib.parse.urljoin(base_url + CONFIG_PATH, location) if location else ""
        hint = f"it redirects to {_origin_and_path(target)}" if target else "it redirects"
        raise NotATinkerAPIError(
            base_url, status, content_type, hint=f"{hint}; set the base URL to the real server"
        )
    decoded = _json_body(response, content_type)
    if decoded is _NOT_JSON or status in _NOT_AN_ENDPOINT:
        raw = decoded if decoded is not _NOT_JSON else response.content
        raise NotATinkerAPIError(
            base_url,
            status,
            content_type,
            body=shorten_body(raw),
            hint=_scheme_hint_for_answer(base_url, response),
        )
    if 200 <= status < 300:
        if not isinstance(decoded, dict):
            raise NotATinkerAPIError(
                base_url, status, content_type, hint="the answer is JSON but not an object"
            )
        return decoded
    if status == 429 or status >= 500:
        return None
    raise _status_error(response)


_NOT_JSON = object()


def _json_body(response: Any, content_type: str) -> object:
    """The decoded JSON body, or ``_NOT_JSON`` (an HTML page, plain text, binary data)."""
    if not content_type.endswith("json") and response.content.strip()[:1] not in (b"{", b"["):
        return _NOT_JSON
    try:
        return json.loads(response.content)
    except ValueError:
        return _NOT_JSON


def _status_error(response: Any) -> Exception:
    decoded = _json_body(response, "application/json")
    return make_status_error(
        int(response.status_code),
        decoded if decoded is not _NOT_JSON else shorten_body(response.content),
        request=f"POST {CONFIG_PATH}",
        request_id=response.headers.get("x-request-id"),
        response=response,
    )


def _scheme_hint_for_answer(base_url: str, response: Any) -> str | None:
    """A plain-HTTP request that reached a TLS port gets a 400 page that says so."""
    if base_url.startswith("http://") and b"https" in response.content[:2000].lower():
        return f"if the server expects TLS, use {_with_scheme(base_url, 'https')}"
    return "check the base URL (TINKER_BASE_URL or --base-url)"


def _connection_error(base_url: str, exc: Exception) -> APIConnectionError:
    import requests

    reason = connection_reason(exc)
    request = f"POST {CONFIG_PATH}"
    if base_url.startswith("https://") and isinstance(
        exc, requests.exceptions.SSLError | requests.Timeout
    ):
        plain = _with_scheme(base_url, "http")
        if _answers_plain_http(plain):
            return APIConnectionError(
                request,
                message=f"cannot reach {base_url}: the TLS handshake failed ({reason}), but the "
                f"server answers plain HTTP: use {plain} (http, not https)",
            )
    message = f"cannot reach {base_url}: {reason}"
    if base_url.startswith("http://") and _looks_like_tls_only(exc):
        message += f" (if the server expects TLS, use {_with_scheme(base_url, 'https')})"
    if isinstance(exc, requests.Timeout):
        return APITimeoutError(request, message=message)
    return APIConnectionError(request, message=message)


def _answers_plain_http(base_url: str) -> bool:
    """Whether anything answers plain HTTP at ``base_url`` (one GET, 2 s at most)."""
    import requests

    try:
        requests.get(base_url + "/api/v1/healthz", timeout=(1.0, 1.0), allow_redirects=False)
    except requests.RequestException:
        return False
    return True


def _looks_like_tls_only(exc: Exception) -> bool:
    text = str(exc).lower()
    return "remotedisconnected" in text or "connection reset" in text or "aborted" in text


def connection_reason(exc: BaseException) -> str:
    """The useful end of a ``requests``/urllib3 connection error, e.g. ``Connection refused``."""
    import re

    text = str(exc)
    errno: list[str] = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno[-1].strip().rstrip(".")
    ssl: list[str] = re.findall(r"\[SSL: [A-Z_]+\] ([^(')]+)", text)
    if ssl:
        return f"TLS error: {ssl[-1].strip()}"
    lowered = text.lower()
    waited = re.findall(r"timeout=([\d.]+)", text)
    if "timed out" in lowered:
        return f"no answer within {float(waited[-1]):g} s" if waited else "timed out"
    if "remotedisconnected" in lowered:
        return "the server closed the connection without answering"
    return " ".join(text.split()) or type(exc).__name__


def _with_scheme(base_url: str, scheme: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit((scheme, *parts[1:]))


def _origin_and_path(url: str) -> str:
    """A URL without its query string (redirect targets may carry signatures there)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
