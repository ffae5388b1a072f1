"""The headers every request carries, and how a request's header set is put together.

:class:`RequestHeaders` is the one place both transports (threaded and asyncio) build a
request's headers and body from: the transport's static headers (API key, ``User-Agent``,
``Accept-Encoding``, the ``X-Stainless-*`` platform headers, Cloudflare access headers), the
per-request ones (``Accept``, ``Content-Type``, ``X-Idempotency-Key``, ``x-sdk-*``), the
caller's, the settings' ``default_headers`` last, and W3C trace context when OpenTelemetry is
in use (docs/protocol.md, "Transport").
"""

from __future__ import annotations

import json as _json
import logging
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tinkex._exceptions import TinkerError
from tinkex._transport.sdk_method import current_sdk_method
from tinkex._version import TINKER_SDK_VERSION, __version__

if TYPE_CHECKING:
    from tinkex._config import ClientSettings

__all__ = [
    "ACCEPT_ENCODING",
    "USER_AGENT",
    "RequestHeaders",
    "check_header",
    "json_bytes",
    "merge_headers",
    "platform_headers",
]

logger = logging.getLogger("tinkex.transport")

USER_AGENT = (
    f"tinkex/{__version__} (tinker-api/{TINKER_SDK_VERSION}; Python/{platform.python_version()})"
)
#: What the official SDK advertises; zstd answers are decoded with ``zstandard`` when urllib3
#: cannot (docs/protocol.md, "Transport").
ACCEPT_ENCODING = "gzip, deflate, zstd"

# Canonical spelling of the headers we set, so a caller's "accept" replaces our "Accept".
_CANONICAL = {
    name.lower(): name
    for name in (
        "X-API-Key",
        "User-Agent",
        "Accept",
        "Accept-Encoding",
        "Content-Type",
        "X-Idempotency-Key",
        "x-stainless-retry-count",
        "x-stainless-read-timeout",
        "CF-Access-Client-Id",
        "CF-Access-Client-Secret",
        "x-sdk-version",
        "x-sdk-method",
    )
}

_OS_NAMES = {"linux": "Linux", "darwin": "MacOS", "windows": "Windows", "freebsd": "FreeBSD"}
_ARCH_NAMES = {
    "x86_64": "x64",
    "amd64": "x64",
    "i386": "x32",
    "i686": "x32",
    "arm64": "arm64",
    "aarch64": "arm64",
}


def platform_headers() -> dict[str, str]:
    """The ``X-Stainless-*`` platform headers the official SDK sends, with this process's values.

    The package version is the API version tinkex speaks (0.38.0); ``X-Stainless-Async`` is
    ``false`` because tinkex's clients are synchronous (thread pools), as in Stainless's own
    synchronous clients.
    """
    system = platform.system()
    machine = platform.machine()
    arch = _ARCH_NAMES.get(machine.lower())
    if arch is None:
        arch = "arm" if machine.lower().startswith("arm") else f"other:{machine}"
    return {
        "X-Stainless-Package-Version": TINKER_SDK_VERSION,
        "X-Stainless-OS": _OS_NAMES.get(system.lower(), f"Other:{system}"),
        "X-Stainless-Arch": arch,
        "X-Stainless-Runtime": platform.python_implementation(),
        "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "false",
    }


def check_header(name: str, value: str) -> None:
    """Reject a header that would break the request line up (CR/LF, bad name).

    Headers are sent as given (see ``Sender.prepare``), so this is checked once, for the
    configured ones. The message names the header, never its value (it may be a secret).
    """
    if not name or any(c in name for c in "\r\n: ") or "\r" in value or "\n" in value:
        raise TinkerError(
            f"Invalid HTTP header {name!r}: names must be non-empty tokens and values must not "
            "contain line breaks; check default_headers and the API key for stray newlines."
        )


def merge_headers(target: dict[str, str], extra: Mapping[str, str]) -> None:
    """Add ``extra`` to ``target``; a name we set is replaced whatever its case."""
    for key, value in extra.items():
        target[_CANONICAL.get(key.lower(), key)] = value


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` without building the
#: encoder on every call (half of the cost of a small body).
_ENCODER = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def json_bytes(value: Any) -> bytes:
    """``value`` as the JSON body of a request: compact, UTF-8 (not ASCII-escaped)."""
    return _ENCODER.encode(value).encode()


#: The bits ``uuid.UUID(..., version=4)`` sets: the version (4) and the RFC 4122 variant.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_urandom = os.urandom  # uuid.uuid4's source (a module name so tests can pin the bytes)


def uuid4_str() -> str:
    """``str(uuid.uuid4())``, the same random source and bits, in a third of the time (it is
    one per request: the idempotency key)."""
    value = int.from_bytes(_urandom(16)) & _UUID4_CLEAR | _UUID4_SET
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_seconds(seconds: float) -> str:
    """``60`` for 60.0, ``2.5`` for 2.5: the spelling of ``x-stainless-read-timeout``."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


class RequestHeaders:
    """The headers of one transport's requests: the static ones, checked and built once from
    ``settings``, and :meth:`build` for each request.

    Raises:
        TinkerError: a configured header (API key, access or default headers) would break the
            request (see :func:`check_header`).
    """

    def __init__(self, settings: ClientSettings) -> None:
        for name, value in _configured_headers(settings):
            check_header(name, value)
        self._static: dict[str, str] = {
            "X-API-Key": settings.api_key,
            "User-Agent": USER_AGENT,
            "Accept-Encoding": ACCEPT_ENCODING,
            **platform_headers(),
        }
        merge_headers(self._static, settings.access_headers)
        self._defaults = dict(settings.default_headers)

    def build(
        self,
        method: str,
        json: Any,
        content: bytes | None,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        accept: str,
        read_timeout: float,
    ) -> tuple[dict[str, str], bytes | None]:
        """The headers and body of one request (every HTTP-layer retry of it sends the same):
        ours, then the caller's ``headers``, then the settings' ``default_headers``."""
        request_headers = self._static.copy()
        request_headers["Accept"] = accept
        request_headers["x-stainless-read-timeout"] = format_seconds(read_timeout)
        body: bytes | None = None
        if method != "GET":
            if json is not None:
                body = json_bytes(json)
            elif content is not None:
                body = content
            request_headers["Content-Type"] = content_type or "application/json"
            # One key per call, reused by every HTTP-layer retry of it.
            request_headers["X-Idempotency-Key"] = f"tinkex-retry-{uuid4_str()}"
        sdk_method = current_sdk_method()
        if sdk_method is not None:
            request_headers["x-sdk-version"] = TINKER_SDK_VERSION
            request_headers["x-sdk-method"] = sdk_method
        if headers:
            merge_headers(request_headers, headers)
        if self._defaults:
            merge_headers(request_headers, self._defaults)
        inject_trace_context(request_headers)
        return request_headers, body


def _configured_headers(settings: ClientSettings) -> Iterator[tuple[str, str]]:
    yield ("X-API-Key", settings.api_key)
    yield from settings.access_headers.items()
    yield from settings.default_headers.items()


def inject_trace_context(headers: dict[str, str]) -> None:
    """W3C ``traceparent``/``tracestate`` of the current OpenTelemetry span, when the
    application uses OpenTelemetry (already imported: tinkex never imports it)."""
    propagate = sys.modules.get("opentelemetry.propagate")
    if propagate is None:
        return
    try:
        propagate.inject(headers)
    except Exception:  # tracing must never break a request
        logger.debug("OpenTelemetry context not injected", exc_info=True)
