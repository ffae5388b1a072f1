"""The response value the transport hands back to clients and pollers, and reading answers:
``Retry-After``, error bodies, zstd-encoded bodies."""

from __future__ import annotations

import json as _json
import time
from collections.abc import Mapping
from typing import Any

from tinkex._exceptions import APIResponseValidationError

__all__ = [
    "PROTOBUF_CONTENT_TYPE",
    "Response",
    "decode_error_body",
    "decode_zstd",
    "parse_retry_after",
    "urllib3_decodes_zstd",
]

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"

#: Retry-After values are honoured only inside (0, 60] seconds.
_MAX_RETRY_AFTER = 60.0

_UNSET: Any = object()


class Response:
    """One HTTP response (only 2xx reach callers; errors become exceptions).

    Attributes:
        status_code: the HTTP status.
        headers: response headers, case-insensitive.
        content: the raw (already decompressed) body.
        request: ``"METHOD /path"`` of the request that produced it.
        elapsed: seconds from sending the request to receiving the body.
    """

    __slots__ = ("_json", "content", "elapsed", "headers", "request", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        content: bytes,
        *,
        request: str = "",
        elapsed: float = 0.0,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.request = request
        self.elapsed = elapsed
        self._json: Any = _UNSET

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header (``""`` when absent)."""
        return self.headers.get("content-type") or ""

    @property
    def is_protobuf(self) -> bool:
        """Whether the body is protobuf (``application/x-protobuf``)."""
        return PROTOBUF_CONTENT_TYPE in self.content_type

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id`` header, if any."""
        return self.headers.get("x-request-id")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body); parsed once and cached.

        Raises:
            APIResponseValidationError: the body is not valid JSON; the message names the
                request.
        """
        if self._json is _UNSET:
            if not self.content:
                self._json = None
            else:
                try:
                    self._json = _json.loads(self.content)
                except ValueError as exc:
                    message = f"Response to {self.request or 'request'} is not valid JSON: {exc}"
                    if "html" in self.content_type.lower():
                        message = (
                            f"Response to {self.request or 'request'} is an HTML page "
                            f"({self.status_code} {self.content_type}), not JSON: the base URL "
                            "is not a Tinker API; check base_url (or TINKER_BASE_URL)."
                        )
                    raise APIResponseValidationError(
                        self,
                        self.text[:500],
                        message=message,
                        request=self.request or None,
                        status_code=self.status_code,
                    ) from None
        return self._json

    def __repr__(self) -> str:
        return (
            f"<Response {self.status_code} {self.request} "
            f"{self.content_type or 'no content-type'} {len(self.content)} bytes>"
        )


def parse_retry_after(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait, from ``retry-after-ms`` or ``retry-after``.

    ``retry-after-ms`` wins; ``retry-after`` may be seconds or an HTTP date. Returns ``None``
    when absent, unparsable, or outside ``0 < v <= 60`` seconds (docs/protocol.md, "Headers").
    """
    if headers is None:
        return None
    value: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = None
    if value is None:
        raw = headers.get("retry-after")
        if raw:
            try:
                value = float(raw)
            except ValueError:
                import email.utils  # rare path; keeps ~10 ms off import time

                try:
                    when = email.utils.parsedate_to_datetime(raw)
                except (TypeError, ValueError, IndexError):
                    return None
                current = time.time() if now is None else now
                value = when.timestamp() - current
    if value is None or not (0 < value <= _MAX_RETRY_AFTER):
        return None
    return value


def decode_error_body(content: bytes) -> object | None:
    """An error answer's body: its JSON value, else its text (None when empty)."""
    if not content:
        return None
    try:
        body: object = _json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")
    return body


def urllib3_decodes_zstd() -> bool:
    """Whether urllib3 decodes ``Content-Encoding: zstd`` itself (else :func:`decode_zstd`)."""
    from urllib3.response import HTTPResponse

    return "zstd" in HTTPResponse.CONTENT_DECODERS


def decode_zstd(content: bytes, label: str) -> bytes:
    """``content`` decoded from zstd (all frames); one that does not decode names ``label``."""
    import io

    import zstandard

    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(content), read_across_frames=True
        )
        return reader.read()
    except zstandard.ZstdError as exc:
        raise APIResponseValidationError(
            None,
            None,
            message=f"Response to {label} says Content-Encoding: zstd but does not decode: {exc}",
            request=label,
        ) from None
